"""``report.md`` of a masked-LM pretraining run: held-out perplexity before and after."""

from __future__ import annotations

from pathlib import Path

from landfall import runs


def write_mlm_report(run_dir: Path, result: dict, plots: dict[str, str]) -> Path:
    h = result.get("heldout") or {}
    t = result.get("train") or {}
    before, after = h.get("initial_perplexity"), h.get("perplexity")
    lines = [f"# Landfall pretraining run: {Path(run_dir).name}", "",
             f"Data: `{(result.get('data') or {}).get('train', '-')}`; "
             f"{t.get('documents', '-')} documents in {t.get('chunks', '-')} training chunks, "
             f"{h.get('chunks', '-')} held-out chunks.", "",
             "| held-out perplexity | value |", "|---|---|",
             f"| before training | {'-' if before is None else f'{before:.2f}'} |",
             f"| best (step {h.get('step', '-')}) | {'-' if after is None else f'{after:.2f}'} |"]
    if t.get("train_seconds") is not None:
        lines += ["", f"Training: {t.get('steps', '-')} steps, {t['train_seconds'] / 60:.1f} min."]
    for name, path in plots.items():
        lines += ["", f"## {name}", "", f"![{name}]({path})"]
    return runs.write_text(Path(run_dir) / runs.REPORT, "\n".join(lines) + "\n")
