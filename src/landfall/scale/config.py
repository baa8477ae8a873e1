"""The ``[ray]`` config section: where Ray runs and how a Ray Serve deployment scales.

Read by ``landfall serve RUN --engine ray`` (from ``--config FILE`` or ``--set ray.field=v``);
a training run's landfall.toml never carries it unless set by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section


@dataclass
class RayConfig:
    address: str = _f("", "Ray cluster to join (auto, ray://HOST:10001); empty = start Ray "
                      "locally.")
    replicas: int = _f(1, "Serve: replicas of the service (each loads the model); fixed "
                       "unless max_replicas > replicas.", ge=1)
    max_replicas: int = _f(0, "Serve: autoscale between replicas and this many (0 = no "
                           "autoscaling).", ge=0)
    target_ongoing_requests: float = _f(
        8.0, "Serve autoscaling: requests in flight per replica that it aims at.", gt=0.0)
    upscale_delay_s: float = _f(10.0, "Serve autoscaling: load above target this long adds "
                                "replicas.", ge=0.0)
    downscale_delay_s: float = _f(120.0, "Serve autoscaling: load below target this long "
                                  "removes replicas.", ge=0.0)
    replica_cpus: float = _f(1.0, "Serve: CPUs reserved per replica (its torch threads).",
                             gt=0.0)
    replica_gpus: float = _f(0.0, "Serve: GPUs per replica (0 = CPU; 1 = one GPU each).",
                             ge=0.0)
    max_ongoing_requests: int = _f(
        256, "Serve: requests a replica takes at once before Ray queues them (the app's own "
        "limits, serve.max_queue and serve.max_inflight, apply inside).", ge=1)


register_section("ray", RayConfig, task="ray")
