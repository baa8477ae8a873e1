"""``landfall export-merged``: fold a LoRA/IA³ adapter into the base weights."""

from __future__ import annotations

from pathlib import Path

from landfall import runs
from landfall.errors import LandfallError


def export_merged(run_dir: str | Path, output: str | Path) -> Path:
    """Write a run directory whose ``model/`` is the LoRA/IA³ run with the adapter folded into
    the base weights: plain transformers loads it (the task's Auto class), no peft needed,
    no adapter overhead. Works for every task whose runs offer ``export-merged``."""
    import tomli_w
    from transformers import AutoTokenizer

    from landfall.hub import resolve_model
    from landfall.inference.adapters import is_adapter_dir, load_adapter_model, merged
    from landfall.inference.loading import model_dir, run_config
    from landfall.tasks import get_task

    run_dir, output = Path(run_dir), Path(output)
    if (output / runs.MODEL).exists():
        raise LandfallError(f"{output}: already holds a model")
    cfg = run_config(run_dir)
    task = get_task(cfg.task.name)
    task.require("export-merged", str(run_dir))
    path = model_dir(run_dir)
    if not is_adapter_dir(path):
        raise LandfallError(f"{run_dir}: not an adapter run (peft.method is "
                            f"{cfg.peft.method}); its model/ is already plain")
    plain = merged(load_adapter_model(path, resolve_model(cfg.model.name), task.auto_class))
    tokenizer = AutoTokenizer.from_pretrained(path)
    cfg.peft.method = "none"

    def write(tmp: Path) -> None:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    runs.save_dir(output / runs.MODEL, write)
    runs.write_text(output / runs.CONFIG, tomli_w.dumps(cfg.to_dict()))
    return output
