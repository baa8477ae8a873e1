"""The ``landfall`` command: one verb per stage; each parses, then calls the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from landfall.errors import LandfallError

app = typer.Typer(
    help="Landfall: fine-tune, evaluate and use pretrained transformers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: section.field=value (repeatable)."),
]


@app.callback()
def _setup() -> None:
    from landfall.utils.quiet import quiet_transformers

    quiet_transformers()


def _fail(exc: LandfallError) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


StrategyOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Change the long-text strategy, e.g. data.truncation=sliding."),
]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML or YAML config file.")]
OutputOpt = Annotated[Path | None, typer.Option(help="Run directory to create.")]
ResumeOpt = Annotated[
    Path | None, typer.Option(help="Continue the run in this directory from its checkpoint.")
]


def _run_job(fn, config, set_, output, resume) -> dict:
    """Settle the config (the run's own on --resume, --set on top) and run a training job."""
    try:
        return fn(_config_for(config, set_, resume, output), resume or output,
                  resume=resume is not None)
    except LandfallError as exc:
        _fail(exc)


@app.command()
def train(
    config: ConfigOpt = None, set_: SetOpt = None, output: OutputOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Train a run of any task (task.name: classification, mlm, causal_lm); writes a run
    directory (model/, landfall.toml, metrics, eval.json, report, plots)."""
    from landfall.api import train as api_train

    result = _run_job(api_train, config, set_, output, resume)
    _print_result(result, resume or output)


@app.command()
def pretrain(
    config: ConfigOpt = None, set_: SetOpt = None, output: OutputOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Masked-LM (continued) pretraining on unlabelled text; model/ feeds `landfall train`."""
    from landfall.api import pretrain as api_pretrain

    result = _run_job(api_pretrain, config, set_, output, resume)
    h = result["heldout"]  # initial_perplexity: before the first step
    if h["perplexity"] is not None:
        print(f"held-out perplexity {h['perplexity']:.2f} "
              f"(before training {h['initial_perplexity']:.2f})")
    print(f"model: {Path(resume or output) / 'model'}")


def _config_for(config, set_, resume, output):
    """The config of a train/pretrain call: the run's own on --resume (with --set on top)."""
    from landfall.config import load_config
    from landfall.inference.loading import run_config

    if resume is None and output is None:
        raise LandfallError("give --output RUN_DIR (or --resume RUN_DIR)")
    if resume is not None and config is None:
        return run_config(resume, set_)
    return load_config(config, set_)


def _print_result(result: dict, run_dir: Path | None) -> None:
    m = result["validation"]
    if "rougeL" in m:  # a generation run
        _print_generation(m)
        if run_dir is not None:
            print(f"report: {Path(run_dir) / 'report.md'}")
        return
    line = f"validation accuracy {m['accuracy']:.2%}  macro-F1 {m['macro_f1']:.4f}"
    if result.get("baseline"):
        line += f"  (baseline {result['baseline']['metrics']['accuracy']:.2%})"
    print(line)
    if result.get("oos"):
        _print_oos(result["oos"])
    if run_dir is not None:
        print(f"report: {Path(run_dir) / 'report.md'}")


def _print_generation(m: dict) -> None:
    table = Table("system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "cosine", "words")
    for name, r in m["systems"].items():
        table.add_row(name, f"{r['rouge1']:.3f}", f"{r['rouge2']:.3f}", f"{r['rougeL']:.3f}",
                      f"{r['similarity']:.3f}", f"{r['length_words']['mean']:.0f}")
    Console().print(table)


def _print_oos(oos: dict) -> None:
    v = oos.get("validation", oos)
    print(f"out-of-scope ({oos['method']}): in-scope accuracy {v['in_scope_accuracy']:.2%}  "
          f"oos recall {v['oos_recall']:.2%}  oos precision {v['oos_precision']:.2%}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `landfall train`.")],
    data: Annotated[str, typer.Option(help="Labelled file shaped like the training file.")],
    output: Annotated[Path | None, typer.Option(help="Where to write eval.json and plots.")] = None,
    text_field: Annotated[str | None, typer.Option(help="Default: the run's.")] = None,
    label_field: Annotated[str | None, typer.Option(help="Default: the run's.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 64,
    limit: Annotated[int | None, typer.Option(
        help="Generation runs: score a seeded sample of this many requests (default: the "
             "run's report.generation_limit; 0 = all).")] = None,
    baselines: Annotated[bool, typer.Option(
        help="Generation runs: also score retrieval and the base model zero/few-shot.")] = True,
    set_: StrategyOpt = None,
) -> None:
    """Classifier: accuracy, macro-F1, per-class precision/recall, ECE, confusion matrix.
    Generation run: ROUGE-1/2/L, MiniLM similarity, lengths, entity carry-over, per category,
    beside the baselines. JSON + PNG + report.md."""
    from landfall.api import evaluate as api_evaluate
    from landfall.inference.loading import run_task

    try:
        if run_task(run_dir).head == "generate":
            out = api_evaluate(run_dir, data, output, limit=limit, baselines=baselines)
            _print_generation(out["validation"])
            print(f"written: {out['output']}")
            return
        out = api_evaluate(run_dir, data, output, text_field=text_field,
                           label_field=label_field, batch_size=batch_size, overrides=set_)
    except LandfallError as exc:
        _fail(exc)
    m = out["metrics"]
    table = Table("metric", "value")
    for key in ("n", "accuracy", "macro_f1", "ece", "nll"):
        table.add_row(key, f"{m[key]:.4f}" if isinstance(m[key], float) else str(m[key]))
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "oos_f1"):
        if out.get("oos"):  # the run has an out-of-scope rule (oos.json)
            table.add_row(key, f"{out['oos'][key]:.4f}")
    Console().print(table)
    print(f"written: {out['output']}")


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `landfall train`.")],
    input: Annotated[str, typer.Option(help="JSONL/CSV/Parquet file of texts.")],
    output: Annotated[Path, typer.Option(help="JSONL file to write (one row per input).")],
    text_field: Annotated[str | None, typer.Option(help="Default: the run's.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 64,
    set_: StrategyOpt = None,
) -> None:
    """Label every text of a file; output rows follow the input order."""
    from landfall.api import predict as api_predict

    try:
        out = api_predict(run_dir, input, output, text_field=text_field, batch_size=batch_size,
                          overrides=set_)
    except LandfallError as exc:
        _fail(exc)
    print(f"{out['n']} predictions written to {out['output']}")


@app.command()
def generate(
    run_dir: Annotated[Path, typer.Argument(help="A causal-LM run directory.")],
    input: Annotated[str, typer.Option(help="JSONL/CSV/Parquet file of requests.")],
    output: Annotated[Path, typer.Option(help="JSONL file to write (one row per request).")],
    text_field: Annotated[str | None, typer.Option(
        help="Request field (default: the run's chat.request_field).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Generation settings, e.g. generate.do_sample=true, "
                      "generate.temperature=0.7, generate.max_new_tokens=128, "
                      "generate.stop='###' (see `landfall config`).")] = None,
) -> None:
    """Write a response to every request: batched with the KV cache, greedy or seeded
    sampling, stop strings; streams to disk and resumes after an interruption."""
    from landfall.api import generate as api_generate

    try:
        out = api_generate(run_dir, input, output, text_field=text_field, overrides=set_)
    except LandfallError as exc:
        _fail(exc)
    print(f"{out['n']} responses ({out['new_tokens']} new tokens) written to {out['output']}")


def _parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise LandfallError(f"--weights {text!r}: expected numbers separated by commas, "
                            "e.g. 1,1,2") from None


@app.command()
def ensemble(
    run_dirs: Annotated[
        list[Path], typer.Argument(metavar="RUN_DIR", help="Two or more run directories.")
    ],
    output: Annotated[Path, typer.Option(help="Ensemble directory to create.")],
    weights: Annotated[
        str | None, typer.Option(help="One weight per run, comma-separated (default: equal).")
    ] = None,
) -> None:
    """Average several runs' class probabilities; `predict` and `evaluate` take the result."""
    from landfall.api import ensemble as api_ensemble

    try:
        out = api_ensemble(run_dirs, output, _parse_weights(weights))
    except LandfallError as exc:
        _fail(exc)
    shares = ", ".join(f"{w:.3g}" for w in out["weights"])
    print(f"ensemble of {len(out['members'])} runs (weights {shares}) written to {out['output']}")


@app.command("export-merged")
def export_merged(
    run_dir: Annotated[Path, typer.Argument(help="A LoRA or IA³ run directory.")],
    output: Annotated[Path, typer.Option(help="Run directory to write (plain model).")],
) -> None:
    """Fold a LoRA/IA³ adapter into the base weights: a plain transformers model to deploy."""
    from landfall.api import export_merged as api_export

    try:
        out = api_export(run_dir, output)
    except LandfallError as exc:
        _fail(exc)
    print(f"merged model written to {out / 'model'}")


@app.command("export-onnx")
def export_onnx(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `landfall train`.")],
    output: Annotated[Path, typer.Option(help="ONNX run directory to write.")],
    quantize: Annotated[str, typer.Option(
        help="none (fp32), dynamic (int8 weights) or static (int8, calibrated).")] = "none",
    calibration: Annotated[str | None, typer.Option(
        help="Static: texts to calibrate on (default: the run's training file).")] = None,
    calibration_size: Annotated[int, typer.Option(
        help="Static: calibrate on a seeded sample of this many texts.")] = 256,
    keep_float: Annotated[str, typer.Option(
        help="int8: comma-separated parts left in fp32 (embeddings, layer.<i>, head).")] = "",
) -> None:
    """Export a run to ONNX Runtime (graph-optimised; optionally int8). predict/evaluate load
    the result like the original run."""
    from landfall.api import export_onnx as api_export

    try:
        out = api_export(run_dir, output, quantize=quantize, calibration=calibration,
                         calibration_size=calibration_size,
                         keep_float=[p for p in keep_float.split(",") if p])
    except LandfallError as exc:
        _fail(exc)
    print(f"ONNX model ({quantize}) written to {out / 'model'}")


@app.command()
def compress(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `landfall train`.")],
    data: Annotated[str, typer.Option(help="Labelled file shaped like the training file.")],
    output: Annotated[Path, typer.Option(help="Run directory to write (the chosen model).")],
    max_drop: Annotated[float, typer.Option(
        help="Accuracy budget: at most this many points below the original.")] = 0.5,
    methods: Annotated[str, typer.Option(
        help="Comma-separated recipes (default: all): torch-int8, onnx-fp32, "
             "onnx-int8-dynamic, onnx-int8-static, prune, prune+onnx-int8-dynamic.")] = "",
    include: Annotated[list[Path] | None, typer.Option(
        help="Another run to measure beside them, e.g. a distilled student (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(
        help="Evaluate on a seeded stratified sample of this many documents (0 = all).")] = 0,
    latency_docs: Annotated[int, typer.Option(
        help="Documents timed one by one for the batch-1 latency.")] = 50,
    calibration: Annotated[str | None, typer.Option(
        help="Static int8: texts to calibrate on (default: the run's training file).")] = None,
    set_: SetOpt = None,
) -> None:
    """Try quantisation and pruning recipes, measure each here, keep the smallest within the
    accuracy budget; writes a Markdown/JSON table and a Pareto plot."""
    from landfall.api import compress as api_compress

    try:
        summary = api_compress(run_dir, data, output, max_drop=max_drop,
                               methods=[m for m in methods.split(",") if m] or None,
                               include=include or (), limit=limit, latency_docs=latency_docs,
                               calibration=calibration, overrides=set_ or ())
    except LandfallError as exc:
        _fail(exc)
    table = Table("method", "MB", "ms b1", "docs/s b32", "accuracy", "drop")
    for r in summary["rows"]:
        if "error" in r:
            table.add_row(r["method"], "failed", "", "", "", r["error"][:60])
            continue
        style = "bold green" if r["method"] == summary["chosen"] else None
        table.add_row(r["method"], f"{r['mb_on_disk']:.1f}", f"{r['latency_ms_b1']:.1f}",
                      f"{r['docs_per_s_b32']:.1f}", f"{r['accuracy']:.2%}",
                      f"{r['drop_points']:+.2f}", style=style)
    Console().print(table)
    print(f"chosen: {summary['chosen']} -> {output}  (table: {output / 'compress' / 'report.md'})")


@app.command()
def prune(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `landfall train`.")],
    output: Annotated[Path, typer.Option(help="Run directory to write.")],
    set_: SetOpt = None,
) -> None:
    """Remove the least important attention heads and FFN neurons (prune.heads, prune.ffn),
    then fine-tune briefly (prune.recovery_steps)."""
    from landfall.api import prune as api_prune

    try:
        result = api_prune(run_dir, output, set_)
    except LandfallError as exc:
        _fail(exc)
    t = result["train"]
    print(f"parameters {t['params_before'] / 1e6:.2f} M -> {t['total_params'] / 1e6:.2f} M")
    _print_result(result, output)


@app.command()
def distill(
    teacher: Annotated[Path, typer.Option(help="The teacher: a run directory.")],
    output: Annotated[Path, typer.Option(help="Run directory to write (the student).")],
    student: Annotated[str | None, typer.Option(
        help="layers:N (the teacher with N layers) or a model name/dir (distill.student).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Knowledge distillation: a smaller student learns the teacher's soft targets (and the
    labels), optionally on unlabelled transfer text (distill.transfer)."""
    from landfall.api import distill as api_distill

    overrides = [*(set_ or []), *([f"distill.student={student}"] if student else [])]
    try:
        result = api_distill(teacher, output, config=config, overrides=overrides)
    except LandfallError as exc:
        _fail(exc)
    _print_result(result, output)


@app.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (PyTorch or ONNX).")],
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000).")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, torch or onnx.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Windows per forward pass.")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(
        help="How long a request waits for others to batch with.")] = None,
    max_batch_tokens: Annotated[int | None, typer.Option(
        help="Padded tokens per forward pass (0 = no limit).")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the API key for /v1/*.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve a run over HTTP: POST /v1/classify, /v1/model, /healthz, /readyz, /metrics,
    /docs. Every serve.* config field also works as --set serve.FIELD=VALUE."""
    import dataclasses

    from landfall.api import serve as api_serve
    from landfall.config import load_config

    given = {"host": host, "port": port, "backend": backend, "max_batch_size": max_batch_size,
             "max_wait_ms": max_wait_ms, "max_batch_tokens": max_batch_tokens,
             "api_key_env": api_key_env}
    try:
        cfg = load_config(config, [*(set_ or []), *(f"serve.{k}={v}" for k, v in given.items()
                                                       if v is not None)]).serve
        console.print(f"serving {run_dir} on http://{cfg.host}:{cfg.port} "
                      f"(docs: http://{cfg.host}:{cfg.port}/docs)", highlight=False)
        api_serve(run_dir, dataclasses.asdict(cfg))
    except LandfallError as exc:
        _fail(exc)


@app.command()
def demo(
    output: Annotated[Path, typer.Option(help="Run directory to create.")] = Path("runs/demo"),
    set_: SetOpt = None,
) -> None:
    """The main job: fine-tune MiniLM on IMDb on a ~10-minute CPU budget, then report."""
    from landfall.api import demo as api_demo

    try:
        result = api_demo(output, set_)
    except LandfallError as exc:
        _fail(exc)
    _print_result(result, output)


@app.command("config")
def show_config(
    config: Annotated[Path | None, typer.Option(help="Show this file resolved.")] = None,
    set_: SetOpt = None,
) -> None:
    """List every config field with its default and help (or a file resolved, as TOML)."""
    from landfall.config import field_help, load_config

    if config or set_:
        import tomli_w

        try:
            print(tomli_w.dumps(load_config(config, set_).to_dict()))
        except LandfallError as exc:
            _fail(exc)
        return
    table = Table("field", "type", "default", "help")
    for name, typ, default, help_ in field_help():
        table.add_row(name, typ, json.dumps(default), help_)
    Console(width=160).print(table)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
