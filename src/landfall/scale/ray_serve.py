"""``landfall serve RUN --engine ray --replicas N``: the same service app on Ray Serve.

The app is ``serving.app.create_app``'s, unchanged (classifier or generation service, chosen
by the run's task): every replica builds it on its own machine (``serve.ingress()`` with
``__serve_build_asgi_app__``, so no model crosses the network), with its own batcher, limits
and /metrics; Ray Serve's proxy spreads the requests over the replicas and, with
``ray.max_replicas``, adds and removes replicas by the requests in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from landfall.errors import LandfallError
from landfall.scale.config import RayConfig
from landfall.scale.ray_batch import connect


def deployment_options(cfg: RayConfig) -> dict[str, Any]:
    """Ray Serve's deployment options from the ``[ray]`` section."""
    opts: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": cfg.replica_cpus, "num_gpus": cfg.replica_gpus},
        "max_ongoing_requests": cfg.max_ongoing_requests,
    }
    if cfg.max_replicas:
        if cfg.max_replicas < cfg.replicas:
            raise LandfallError(f"ray.max_replicas={cfg.max_replicas} is below ray.replicas="
                                f"{cfg.replicas} (the fewest replicas when autoscaling)")
        opts["autoscaling_config"] = {
            "min_replicas": cfg.replicas, "max_replicas": cfg.max_replicas,
            "initial_replicas": cfg.replicas,
            "target_ongoing_requests": cfg.target_ongoing_requests,
            "upscale_delay_s": cfg.upscale_delay_s, "downscale_delay_s": cfg.downscale_delay_s}
    else:
        opts["num_replicas"] = cfg.replicas
    return opts


def application(build_app: Callable[[], Any], cfg: RayConfig, name: str = "landfall"):
    """A bound Ray Serve application whose replicas serve ``build_app()`` (a picklable
    callable returning the FastAPI app; called once on each replica)."""
    from ray import serve

    @serve.ingress()
    class Landfall:
        def __init__(self, build: Callable[[], Any]) -> None:
            import torch

            torch.set_num_threads(max(1, int(cfg.replica_cpus)))
            self._build = build

        def __serve_build_asgi_app__(self):
            return self._build()

    return serve.deployment(Landfall, name=name, **deployment_options(cfg)).bind(build_app)


def run(build_app: Callable[[], Any], cfg: RayConfig, *, host: str, port: int,
        blocking: bool = True, route_prefix: str = "/"):
    """Start Ray (or join ``ray.address``), Serve's HTTP proxy on ``host:port``, and the
    deployment; with ``blocking`` serve until interrupted. Returns the app's handle."""
    from ray import serve

    connect(cfg.address or None, max(2, int(cfg.replicas * cfg.replica_cpus) + 1))
    serve.start(http_options={"host": host, "port": port})
    handle = serve.run(application(build_app, cfg), name="landfall", route_prefix=route_prefix,
                       blocking=False)
    if blocking:
        import time

        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            serve.shutdown()
    return handle
