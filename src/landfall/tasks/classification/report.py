"""``report.md`` of a classification run: the human-readable summary.

One Markdown file: a summary table with the transformer and the classic baseline side by
side, a verdict, per-class scores, the plots (relative links into ``plots/``) and the
resolved configuration. Every part but the title and the metrics is optional.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from landfall.runs import REPORT, write_text


def _pct(x: Any) -> str:
    return f"{100 * x:.2f} %" if isinstance(x, int | float) else "-"


def _num(x: Any, fmt: str = ".3f") -> str:
    return format(x, fmt) if isinstance(x, int | float) else "-"


def _cell(x: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def _first(d: dict[str, Any] | None, *keys: str) -> Any:
    """The first of ``keys`` present (not None) in ``d``."""
    return next((d[k] for k in keys if d and d.get(k) is not None), None)


def _summary(config: dict, m: dict, baseline: dict | None, train: dict | None) -> list[str]:
    """The side-by-side table of the transformer and the baseline, plus the verdict."""
    model = config.get("model", {})
    data = config.get("data", {})
    secs = _first(train, "train_seconds", "wall_seconds", "seconds")
    sps = _first(train, "samples_per_s", "train_samples_per_s")
    lines = [
        f"Data: `{data.get('train') or '-'}`; validation size: {m.get('n', '-')}.",
        "",
        "| model | accuracy | macro-F1 | ECE | train time | samples/s |",
        "|---|---|---|---|---|---|",
        f"| {_cell(model.get('name', 'transformer'))} | {_pct(m.get('accuracy'))} "
        f"| {_num(m.get('macro_f1'))} | {_num(m.get('ece'))} | {_num(secs, '.0f')} s "
        f"| {_num(sps, '.1f')} |",
    ]
    if baseline:
        b = baseline.get("metrics", {})
        lines.append(
            f"| {_cell(baseline.get('name', 'baseline'))} (baseline) | {_pct(b.get('accuracy'))} "
            f"| {_num(b.get('macro_f1'))} | {_num(b.get('ece'))} "
            f"| {_num(baseline.get('train_seconds'), '.0f')} s | - |"
        )
        lines += ["", f"**Verdict:** {_verdict(m.get('accuracy'), b.get('accuracy'))}"]
    return lines


def _verdict(acc: Any, base_acc: Any) -> str:
    if not isinstance(acc, int | float) or not isinstance(base_acc, int | float):
        return "no comparison (an accuracy is missing)."
    gap = 100 * (acc - base_acc)
    if gap > 0:
        return f"the transformer beats the baseline by {gap:.2f} accuracy points."
    return f"the transformer does not beat the baseline ({-gap:.2f} accuracy points behind)."


def _oos(oos: dict) -> list[str]:
    """One line: the out-of-scope rule and its validation scores."""
    v = oos.get("validation", oos)
    t = oos.get("threshold")
    rule = oos.get("method", "-") + (f", threshold {t:.4g}" if isinstance(t, int | float) else "")
    return [f"**Out-of-scope** (`{_cell(oos.get('label', '-'))}`, {rule}): in-scope accuracy "
            f"{_pct(v.get('in_scope_accuracy'))}, oos recall {_pct(v.get('oos_recall'))}, "
            f"oos precision {_pct(v.get('oos_precision'))}."]


def _per_class(m: dict) -> list[str]:
    rows = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, s in m.get("per_class", {}).items():
        rows.append(
            f"| {_cell(name)} | {_num(s.get('precision'))} | {_num(s.get('recall'))} "
            f"| {_num(s.get('f1'))} | {s.get('support', '-')} |"
        )
    return rows


def _toml(config: dict, prefix: str = "") -> list[str]:
    """Render a nested dict as TOML-ish text (``None`` values become comments)."""
    scalars = [(k, v) for k, v in config.items() if not isinstance(v, dict)]
    lines = [f"[{prefix}]"] if prefix and scalars else []
    for k, v in scalars:
        lines.append(f"# {k} = (unset)" if v is None else f"{k} = {json.dumps(v)}")
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ([""] if lines else []) + _toml(v, f"{prefix}.{k}" if prefix else k)
    return lines


def write_report(
    run_dir: Path,
    *,
    title: str,
    config: dict,
    eval_metrics: dict,
    baseline: dict | None,
    train_summary: dict | None,
    plots: dict[str, str],
    oos: dict | None = None,
) -> Path:
    """Write ``run_dir/report.md`` atomically and return its path."""
    summary = _summary(config, eval_metrics, baseline, train_summary)
    if oos:
        summary += ["", *_oos(oos)]
    parts = [f"# {title}", "", "## Summary", "", *summary]
    if eval_metrics.get("per_class"):
        parts += ["", "## Per-class scores (validation)", "", *_per_class(eval_metrics)]
    if plots:
        parts += ["", "## Plots"]
        for name, path in plots.items():
            parts += ["", f"![{name}]({path})"]
    if config:
        parts += ["", "## Configuration", "", "```toml", *_toml(config), "```"]
    return write_text(Path(run_dir) / REPORT, "\n".join(parts).rstrip() + "\n")
