"""``landfall train --processes N [--nodes M --rendezvous HOST:PORT]``: the same training
entry point (``landfall train``) in N data-parallel processes per machine, through torchrun's
elastic agent (``torch.distributed.run``), in-process.

Nothing here trains: each worker runs ``python -m landfall train`` with the same arguments,
and accelerate's Accelerator, seeing torchrun's environment, joins the process group (gloo on
CPU, NCCL on GPU) and wraps the model in DDP (``training.distributed``). The agent is
torchrun's own: when a worker fails it stops the others (no rank hangs in a collective) and
we turn its report into one message. ``torchrun -m landfall train ...`` and ``accelerate
launch -m landfall train ...`` run the same workers; this is a shortcut that needs no
launcher on the command line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from landfall.errors import LandfallError

ENTRY = ["-m", "landfall", "train"]


WORKER = "LANDFALL_WORKER"  # set in the workers this module starts: the launcher reports


def launched() -> bool:
    """True inside a worker that a launcher started (torchrun, accelerate, mpirun)."""
    return any(k in os.environ for k in ("TORCHELASTIC_RUN_ID", "LOCAL_RANK"))


def worker_args(cfg, output: Path, resume: bool, overrides: list[str] | None,
                tmp: Path) -> list[str]:
    """The ``landfall train`` arguments each worker gets: the config file as given (a
    Config object from Python is written to ``tmp`` as TOML first), the overrides, the run."""
    import tomli_w

    from landfall.config import Config

    args: list[str] = []
    if isinstance(cfg, Config):
        path = tmp / "config.toml"
        path.write_text(tomli_w.dumps(cfg.to_dict()))
        args += ["--config", str(path)]
    elif cfg is not None:
        args += ["--config", str(cfg)]
    for o in overrides or []:
        args += ["--set", o]
    args += ["--resume" if resume else "--output", str(output)]
    return args


def _describe(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def train_distributed(cfg, output: Path, *, resume: bool, overrides: list[str] | None,
                      processes: int, nodes: str = "1", rendezvous: str = "",
                      run_id: str = "") -> dict:
    """Run ``landfall train`` in ``processes`` workers on this machine (``nodes`` machines in
    all, ``MIN:MAX`` for an elastic range, meeting at ``rendezvous``); return rank 0's
    eval.json (when this machine holds rank 0's run directory)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if processes < 1:
        raise LandfallError(f"--processes {processes}: give 1 or more")
    lo, _, hi = str(nodes).partition(":")
    try:
        min_nodes, max_nodes = int(lo), int(hi or lo)
    except ValueError:
        raise LandfallError(f"--nodes {nodes!r}: give a number or MIN:MAX") from None
    if max_nodes > 1 and not rendezvous:
        raise LandfallError("--nodes > 1: give --rendezvous HOST:PORT (the same on every "
                            "machine; rank 0's machine listens there)")
    config = LaunchConfig(
        min_nodes=min_nodes, max_nodes=max_nodes, nproc_per_node=processes,
        run_id=run_id or (f"landfall-{Path(output).name}" if max_nodes > 1
                          else uuid.uuid4().hex),
        rdzv_backend="c10d",
        # one machine: a free port on the loopback, as torchrun --standalone
        rdzv_endpoint=rendezvous or "127.0.0.1:0",
        max_restarts=0, monitor_interval=0.2, start_method="spawn")
    # the agent's own INFO/WARNING lines (one per worker start) drown the run's
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    # the workers inherit this environment: the cores shared out (torchrun's own default is
    # 1 thread; train.threads > 0 sets it per run), and the mark that the launcher reports
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", WORKER)}
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    os.environ[WORKER] = "1"
    with tempfile.TemporaryDirectory(prefix="landfall-launch-") as tmp:
        args = worker_args(cfg, Path(output), resume, overrides, Path(tmp))
        try:
            elastic_launch(config, entrypoint=sys.executable)(*ENTRY, *args)
        except ChildFailedError as exc:
            raise LandfallError(_failure_message(exc, output, processes, nodes)) from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    from landfall import runs

    eval_path = Path(output) / runs.EVAL
    return json.loads(eval_path.read_text()) if eval_path.exists() else {}


def _failure_message(exc, output, processes: int, nodes: str) -> str:
    first_rank, first = min(exc.failures.items(), key=lambda kv: kv[1].timestamp)
    others = sorted(r for r in exc.failures if r != first_rank)
    again = f"landfall train --resume {output} --processes {processes}"
    if str(nodes) != "1":
        again += f" --nodes {nodes} --rendezvous HOST:PORT"
    return (f"distributed training failed: rank {first_rank} ended first "
            f"({_describe(first.exitcode)})"
            + (f"; ranks {', '.join(map(str, others))} were stopped" if others else "")
            + f". Its own error, if it printed one, is above. The last checkpoint is in "
            f"{Path(output) / 'checkpoints'}: continue with `{again}`")
