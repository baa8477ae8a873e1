"""``landfall compress``: try recipes, measure each on the given data and this machine, keep
the smallest model within the accuracy budget, and report the table and its Pareto plot.

Selection: among the candidates whose accuracy is at most ``max_drop`` points below the
original's, the smallest on disk wins; candidates within 5 % of that size count as tied and
the fastest of them (batch-32 throughput) wins. If full int8 (ONNX dynamic) breaks the budget,
the parts it hurts most are kept in float, one more at a time (up to three), as an extra
candidate. The chosen run directory is copied to ``output``; every candidate stays under
``output/compress/candidates/`` for inspection.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from landfall import runs
from landfall.compression.measure import markdown_table, measure
from landfall.compression.recipes import DEFAULT, NEEDS, RECIPES, Context, keep_float_recipe
from landfall.errors import LandfallError
from landfall.utils.progress import log

ORIGINAL = "original"
TIE = 0.05  # sizes within 5 % are a tie, broken by throughput
KEEP_FLOAT_TRIES = 3


def choose(rows: Sequence[dict], max_drop: float) -> dict | None:
    """The row to keep: smallest within budget, ties (5 %) broken by throughput."""
    ok = [r for r in rows if "error" not in r and r["drop_points"] <= max_drop + 1e-9]
    if not ok:
        return None
    smallest = min(r["mb_on_disk"] for r in ok)
    tied = [r for r in ok if r["mb_on_disk"] <= smallest * (1 + TIE)]
    return max(tied, key=lambda r: r["docs_per_s_b32"])


def relative(row: dict, ref: dict) -> dict:
    """Add the drop (points), speed-up and size ratio against the reference row."""
    row["drop_points"] = 100 * (ref["accuracy"] - row["accuracy"])
    row["speedup_b32"] = row["docs_per_s_b32"] / ref["docs_per_s_b32"]
    row["smaller"] = ref["mb_on_disk"] / row["mb_on_disk"]
    return row


def load_eval(run_dir: Path, data: str, limit: int, seed: int):
    from landfall.data.labels import encode_labels
    from landfall.data.readers import read_examples
    from landfall.data.splits import stratified_split
    from landfall.inference.loading import load_run, run_config

    cfg = run_config(run_dir)
    examples = read_examples(data, text_field=cfg.data.text_field,
                             label_field=cfg.data.label_field,
                             label_names=cfg.data.names())
    if limit and limit < len(examples):
        examples = stratified_split(examples, limit / len(examples), seed)[1]
    labels = load_run(run_dir, device="cpu").labels
    y = encode_labels(examples, labels, label_field=cfg.data.label_field)
    return cfg, [e.text for e in examples], y, labels


def _notes(row: dict) -> str:
    notes = [row["note"]] if row.get("note") else []
    if row.get("kept_in_float"):
        notes.append("kept in float: " + ", ".join(row["kept_in_float"]))
    return "; ".join(notes) or "-"


def _table(rows: Sequence[dict], chosen: str) -> str:
    head = ["method", "MB on disk", "parameters", "latency b1 (ms)", "docs/s b32",
            "x original", "accuracy", "drop (pts)", "notes"]
    return markdown_table(head, rows, chosen, lambda r: [
        f"{r['mb_on_disk']:.1f}", f"{r['params'] / 1e6:.2f} M", f"{r['latency_ms_b1']:.1f}",
        f"{r['docs_per_s_b32']:.1f}", f"{r['speedup_b32']:.2f}", f"{r['accuracy']:.2%}",
        f"{r['drop_points']:+.2f}", _notes(r)])


def compress(run_dir: str | Path, data: str, output: str | Path, *, max_drop: float = 0.5,
             methods: Sequence[str] | None = None, include: Sequence[str | Path] = (),
             limit: int = 0, latency_docs: int = 50, calibration: str | Path | None = None,
             calibration_size: int = 256, overrides: Sequence[str] = ()) -> dict:
    """Compress ``run_dir`` within ``max_drop`` accuracy points on ``data``; write the chosen
    run directory at ``output`` and return the summary (also ``output/compress/``)."""
    from landfall.compression.onnx_export import calibration_texts
    from landfall.compression.sensitivity import sensitivity
    from landfall.data.tokens import tokenize
    from landfall.inference.loading import load_run

    run_dir, output = Path(run_dir), Path(output)
    methods = list(methods or DEFAULT)
    unknown = [m for m in methods if m not in RECIPES]
    if unknown:
        raise LandfallError(f"unknown compression method(s) {unknown}; choose from "
                            f"{list(RECIPES)}")
    for m in methods:
        if m in NEEDS and NEEDS[m] not in methods:
            methods.insert(methods.index(m), NEEDS[m])
    if (output / runs.MODEL).exists():
        raise LandfallError(f"{output}: already holds a model; choose another --output")
    if max_drop < 0:
        raise LandfallError(f"--max-drop must be >= 0 points, got {max_drop}")
    cfg, texts, y, labels = load_eval(run_dir, data, limit, 0)
    work = output / "compress"
    cands = work / "candidates"
    shutil.rmtree(cands, ignore_errors=True)
    cands.mkdir(parents=True)

    def row(name: str, path: Path, **extra) -> dict:
        log(f"measuring {name}")
        r = {"method": name, "path": str(path), **measure(path, texts, y, labels,
                                                          latency_docs=latency_docs), **extra}
        made = path / "compression.json"
        if made.exists():
            note = json.loads(made.read_text(encoding="utf-8")).get("note")
            if note:
                r["note"] = note
        relative(r, rows[0] if rows else r)
        log(f"  {name}: accuracy {r['accuracy']:.2%} ({r['drop_points']:+.2f} pts), "
            f"{r['mb_on_disk']:.1f} MB, {r['docs_per_s_b32']:.1f} docs/s")
        return r

    rows: list[dict] = []
    rows.append(row(ORIGINAL, run_dir))
    ctx = Context(overrides=list(overrides))
    if "onnx-int8-static" in methods:
        ctx.calibration_texts = calibration_texts(cfg, calibration, calibration_size)
    for name in methods:
        out = cands / name.replace("+", "_")
        log(f"building {name}")
        try:
            RECIPES[name](run_dir, out, ctx)
        except LandfallError as exc:
            rows.append({"method": name, "error": str(exc)})
            continue
        ctx.made[name] = out
        rows.append(row(name, out))
        if name == "onnx-int8-dynamic" and rows[-1]["drop_points"] > max_drop:
            docs = tokenize(texts, load_run(run_dir, device="cpu").tokenizer)
            scores = sensitivity(run_dir, docs)
            log("int8 sensitivity (KL): " + ", ".join(f"{k} {v:.2e}" for k, v in
                                                       scores.items()))
            for k in range(1, min(KEEP_FLOAT_TRIES, len(scores)) + 1):
                ctx.keep_float = list(scores)[:k]
                tag = f"onnx-int8-dynamic (float: {', '.join(ctx.keep_float)})"
                out = cands / f"onnx-int8-dynamic-float{k}"
                keep_float_recipe()(run_dir, out, ctx)
                rows.append(row(tag, out, kept_in_float=ctx.keep_float,
                                sensitivity=scores))
                if rows[-1]["drop_points"] <= max_drop:
                    break
    for extra in include:
        rows.append(row(f"run: {Path(extra).name}", Path(extra)))

    best = choose(rows[1:], max_drop)
    chosen = best["method"] if best else ORIGINAL
    src = Path(best["path"]) if best else run_dir
    _install(src, output)
    summary = {"source": str(run_dir), "data": data, "n": len(texts), "max_drop": max_drop,
               "chosen": chosen, "rows": rows}
    runs.write_json(work / "compress.json", summary)
    runs.write_text(work / "report.md", f"# Compression of `{run_dir}`\n\n"
                    f"Evaluated on `{data}` ({len(texts)} documents) on this machine; budget: "
                    f"at most {max_drop} points below the original. Chosen: **{chosen}**.\n\n"
                    + _table(rows, chosen)
                    + "\nUnstructured (magnitude) pruning is not offered: zeroed weights do not "
                    "make dense CPU inference faster. `prune` removes whole heads and neurons."
                    "\n\n![accuracy vs latency](pareto.png)\n")
    from landfall.reports.plots import plot_pareto

    plot_pareto([r for r in rows if "error" not in r], work / "pareto.png", chosen=chosen,
                floor=rows[0]["accuracy"] - max_drop / 100)
    return summary


def _install(src: Path, output: Path) -> None:
    """Copy the chosen run directory's model and run files to ``output``."""
    from landfall.inference.loading import model_dir

    model = model_dir(src)
    runs.save_dir(output / runs.MODEL, lambda tmp: shutil.copytree(model, tmp,
                                                                    dirs_exist_ok=True))
    runs.copy_run_files(src, output, (*runs.RUN_FILES, "compression.json", "pruning.json"))
