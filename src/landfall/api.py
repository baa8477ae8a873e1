"""The Python API and the one table of verbs that the CLI is generated from.

Each verb is declared once, in ``VERBS``: an arguments dataclass whose fields carry their help
(and how the CLI shows them), the function that does the work, and the config sections whose
fields the verb reads. ``landfall.train(cfg, output)`` and ``landfall train --config FILE
--output DIR`` are the same verb: the module-level functions below are generated from the
table with the dataclass's signature, and ``landfall.cli`` builds one command per verb.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landfall.apps.assistant import config as _assistant_config  # noqa: F401  (its sections)
from landfall.config import Config, build_config, load_config
from landfall.errors import LandfallError
from landfall.safety import config as _audit_config  # noqa: F401  (registers [audit])
from landfall.scale import config as _ray_config  # noqa: F401  (registers [ray])


def arg(default: Any, help: str, *, positional: bool = False, flag: str = "",
        cli: bool = True) -> Any:
    """A verb argument: its help, whether the CLI takes it as a positional argument, its
    option name when it differs from the field's (``overrides`` is ``--set``), and whether
    the CLI offers it at all (a Config object is for Python callers only)."""
    return field(default=default, metadata={"help": help, "positional": positional,
                                            "flag": flag, "cli": cli})


def req(help: str, *, positional: bool = False, flag: str = "") -> Any:
    """A required verb argument."""
    return field(metadata={"help": help, "positional": positional, "flag": flag, "cli": True,
                           "required": True})


SET_HELP = "Override a config field: section.field=value (repeatable)."


@dataclass
class Verb:
    name: str  # the CLI command (export-onnx; "embody run" is a sub-command); the Python
    # function is the name with _ for - and space (export_onnx, embody_run)
    args: type  # dataclass of the arguments
    run: Callable[[Any], Any]  # does the work, given an instance of ``args``
    help: str
    sections: tuple[str, ...] = ()  # config sections whose fields --set takes (listed in --help)
    flags_from: str = ""  # a config section whose every field is also a --flag (serve)
    api: bool = True  # also a function of the Python API

    @property
    def py_name(self) -> str:
        return self.name.replace("-", "_").replace(" ", "_")


# --- training ------------------------------------------------------------------------------


def _settle(cfg, overrides, resume, output) -> Config:
    """The config of a training call: a Config as given (``overrides`` on top), a file (or
    nothing: defaults) with overrides, or the run's own on ``resume``."""
    from landfall.inference.loading import run_config

    if isinstance(cfg, Config):
        return build_config(cfg.to_dict(), overrides, source="config") if overrides else cfg
    if resume and output is not None and cfg is None:
        return run_config(output, overrides)
    return load_config(cfg, overrides)


@dataclass
class TrainArgs:
    cfg: Any = arg(None, "TOML or YAML config file (or, from Python, a Config).", flag="--config")
    output: Path | None = arg(None, "Run directory to create (with --resume: to continue).")
    resume: Path | None = arg(None, "Continue the run in this directory from its last "
                                    "checkpoint (from Python also resume=True with output).")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")
    processes: int = arg(1, "Data-parallel processes on this machine (DDP through accelerate: "
                            "gloo on CPU, NCCL on GPU, one per GPU); train.batch_size x "
                            "train.grad_accum stays the global batch.")
    nodes: str = arg("1", "Machines in all (or MIN:MAX); run the same command on each.")
    rendezvous: str = arg("", "With --nodes > 1: HOST:PORT where the machines meet (torchrun's "
                              "c10d rendezvous), the same on every machine.")


def _train(a: TrainArgs, task: str | None = None) -> dict:
    from landfall.scale.launch import launched, train_distributed
    from landfall.training.run import train as run

    resume = bool(a.resume)
    output = a.resume if isinstance(a.resume, str | Path) else a.output
    if output is None:
        raise LandfallError("give --output RUN_DIR (or --resume RUN_DIR)")
    if (a.processes != 1 or str(a.nodes) != "1") and not launched():
        cfg = a.cfg
        overrides = [*(a.overrides or []), *([f"task.name={task}"] if task else [])]
        if cfg is None and not resume:
            raise LandfallError("a config is needed (or --resume RUN_DIR)")
        return train_distributed(cfg, Path(output), resume=resume, overrides=overrides,
                                 processes=a.processes, nodes=a.nodes,
                                 rendezvous=a.rendezvous)
    cfg = _settle(a.cfg, a.overrides, resume, output)
    if task:
        cfg.task.name = task
    return run(cfg, output, resume=resume)


def _pretrain(a: TrainArgs) -> dict:
    return _train(a, task="mlm")


@dataclass
class DemoArgs:
    output: Path = arg(Path("runs/demo"), "Run directory to create.")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")


# The main job: BANKING77 intents (77 classes, short queries), about 10 minutes on 2 CPU cores
# with the install (README). A seeded, stratified 10 % of the queries is written to
# OUTPUT/data/heldout.jsonl before training and never used to pick anything: the model is
# evaluated once, at the end (eval_every beyond the last step, patience 0), and the TF-IDF +
# logistic-regression baseline is fitted on the same training queries and scored on the same
# held-out ones.
DEMO = {
    "data": {"text_field": "text", "label_field": "category", "max_length": 64,
             "truncation": "head"},
    "train": {"epochs": 3.0, "batch_size": 32, "lr": 2e-4, "warmup_ratio": 0.1,
              "eval_every": 1_000_000, "patience": 0, "seed": 42},
}
DEMO_HELDOUT = 0.1


def demo_config(output: str | Path = "runs/demo",
                overrides: list[str] | None = None) -> Config:
    """The demo's config; its data files are written under ``OUTPUT/data`` by ``demo_data``."""
    data = {k: dict(v) for k, v in DEMO.items()}
    data["data"]["train"] = str(Path(output) / "data" / "train.jsonl")
    data["data"]["validation"] = str(Path(output) / "data" / "heldout.jsonl")
    return build_config(data, overrides, source="demo")


def demo_data(output: str | Path, seed: int = 42) -> tuple[Path, Path]:
    """Split BANKING77's training queries into ``OUTPUT/data/train.jsonl`` and a seeded,
    stratified held-out ``OUTPUT/data/heldout.jsonl``; returns both paths."""
    from landfall import runs
    from landfall.data.readers import read_examples
    from landfall.data.sources import banking77_train
    from landfall.data.splits import stratified_split

    examples = read_examples(banking77_train(), text_field="text", label_field="category")
    train, heldout = stratified_split(examples, DEMO_HELDOUT, seed)
    paths = []
    for name, part in (("train", train), ("heldout", heldout)):
        lines = "".join(runs.json_line({"text": e.text, "category": e.label}) for e in part)
        paths.append(runs.write_text(Path(output) / "data" / f"{name}.jsonl", lines))
    return paths[0], paths[1]


def demo_next_steps(output: str | Path) -> list[str]:
    """The commands to try next on the demo's run."""
    run, held = Path(output), Path(output) / "data" / "heldout.jsonl"
    body = ('{"texts": ["I still have not received my new card", '
            '"how do I top up by bank transfer?"]}')
    return [
        f"landfall evaluate {run} --data {held}",
        f"landfall predict {run} --input {held} --output {run}/predictions.jsonl",
        f"landfall serve {run} --port 8000 &",
        f"curl -s localhost:8000/v1/classify -H 'content-type: application/json' -d '{body}'",
        f"landfall compress {run} --data {held} --max-drop 0.5 --methods torch-int8,"
        f"onnx-int8-dynamic --output {run}-small",
    ]


def _demo(a: DemoArgs) -> dict:
    from landfall import runs
    from landfall.training.run import train as run

    if (Path(a.output) / runs.MODEL).exists():
        raise LandfallError(f"{a.output}: already holds a run; choose another --output")
    cfg = demo_config(a.output, a.overrides)
    demo_data(a.output, cfg.train.seed)
    result = run(cfg, a.output)
    result["next_steps"] = demo_next_steps(a.output)
    return result


# --- using a run ---------------------------------------------------------------------------


@dataclass
class EvaluateArgs:
    run_dir: Path = req("A run directory.", positional=True)
    data: str = req("Labelled file shaped like the training file (a generation run: requests "
                    "with their reference responses).")
    output: Path | None = arg(None, "Where to write eval.json and plots (default: "
                                    "RUN_DIR/eval-NAME).")
    text_field: str | None = arg(None, "Classifier: text field (default: the run's).")
    label_field: str | None = arg(None, "Classifier: label field (default: the run's).")
    batch_size: int = arg(64, "Classifier: sequences per forward pass.")
    limit: int | None = arg(None, "Generation run: score a seeded sample of this many requests "
                                  "(default: the run's report.generation_limit; 0 = all).")
    baselines: bool = arg(True, "Generation run: also score retrieval and the base model "
                                "zero/few-shot.")
    overrides: list[str] | None = arg(None, "Classifier: change the long-text strategy, e.g. "
                                            "data.truncation=sliding.", flag="--set")
    engine: str = arg("local", "Classifier: local or ray (the texts scored chunk by chunk by "
                               "an actor pool; the same figures).")
    address: str = arg("", "--engine ray: the cluster (auto, ray://HOST:10001); default: "
                           "start Ray locally.")
    actors: int = arg(2, "--engine ray: actors, one model each.")
    threads: int = arg(1, "--engine ray: CPUs (torch threads) per actor.")


def _evaluate(a: EvaluateArgs) -> dict:
    from landfall.inference.loading import run_task

    if run_task(a.run_dir).head == "generate":
        if a.engine != "local":
            raise LandfallError("evaluate --engine ray: generation runs are not supported "
                                "yet; run `landfall generate --engine ray` and score locally")
        from landfall.reports.generation import evaluate_generation

        return evaluate_generation(a.run_dir, a.data, a.output, limit=a.limit,
                                   baselines=a.baselines)
    from landfall.reports.evaluate import evaluate as classifier

    engine = None if a.engine == "local" else _engine(a.engine, a.address, a.actors, a.threads)
    return classifier(a.run_dir, a.data, a.output, text_field=a.text_field,
                      label_field=a.label_field, batch_size=a.batch_size, overrides=a.overrides,
                      engine=engine)


ENGINE_HELP = ("local (this process) or ray (an actor pool of the run's model on Ray; "
               "pip install 'landfall[ray]').")


def _engine(engine: str, address: str, actors: int, threads: int):
    """Where the chunks of predict/generate are computed (``inference.chunks``)."""
    if engine == "local":
        from landfall.inference.chunks import local

        return local
    if engine == "ray":
        from landfall.scale.ray_batch import ray_engine

        return ray_engine(address=address or None, actors=actors, threads=threads)
    raise LandfallError(f"--engine {engine!r}: choose local or ray")


@dataclass
class PredictArgs:
    run_dir: Path = req("A classifier run directory.", positional=True)
    input: str = req("JSONL/CSV/Parquet file of texts.")
    output: Path = req("JSONL file to write (one row per input, in input order).")
    text_field: str | None = arg(None, "Default: the run's.")
    batch_size: int = arg(64, "Sequences per forward pass.")
    overrides: list[str] | None = arg(None, "Change the long-text strategy, e.g. "
                                            "data.truncation=sliding.", flag="--set")
    engine: str = arg("local", ENGINE_HELP)
    address: str = arg("", "--engine ray: the cluster (auto, ray://HOST:10001); default: "
                           "start Ray locally.")
    actors: int = arg(2, "--engine ray: actors, one model each.")
    threads: int = arg(1, "--engine ray: CPUs (torch threads) per actor.")


def _predict(a: PredictArgs) -> dict:
    from landfall.inference.predict import predict_file

    return predict_file(a.run_dir, a.input, a.output, text_field=a.text_field,
                        batch_size=a.batch_size, overrides=a.overrides,
                        engine=_engine(a.engine, a.address, a.actors, a.threads))


@dataclass
class GenerateArgs:
    run_dir: Path = req("A causal-LM run directory.", positional=True)
    input: str = req("JSONL/CSV/Parquet file of requests.")
    output: Path = req("JSONL file to write (one row per request, in input order).")
    text_field: str | None = arg(None, "Request field (default: the run's chat.request_field).")
    overrides: list[str] | None = arg(None, "Generation settings, e.g. generate.do_sample=true "
                                            "generate.temperature=0.7 generate.stop='###'.",
                                      flag="--set")
    engine: str = arg("local", ENGINE_HELP)
    address: str = arg("", "--engine ray: the cluster (auto, ray://HOST:10001); default: "
                           "start Ray locally.")
    actors: int = arg(2, "--engine ray: actors, one model each.")
    threads: int = arg(1, "--engine ray: CPUs (torch threads) per actor.")


def _generate(a: GenerateArgs) -> dict:
    from landfall.inference.generate import generate_file

    return generate_file(a.run_dir, a.input, a.output, text_field=a.text_field,
                         overrides=a.overrides,
                         engine=_engine(a.engine, a.address, a.actors, a.threads))


@dataclass
class EnsembleArgs:
    runs: list[Path] = req("Two or more classifier run directories.", positional=True)
    output: Path = req("Ensemble directory to create.")
    weights: Any = arg(None, "One weight per run, comma-separated (default: equal).")


def _ensemble(a: EnsembleArgs) -> dict:
    from landfall.training.ensemble import build_ensemble

    weights = a.weights
    if isinstance(weights, str):
        try:
            weights = [float(x) for x in weights.split(",")]
        except ValueError:
            raise LandfallError(f"--weights {a.weights!r}: expected numbers separated by "
                                "commas, e.g. 1,1,2") from None
    return build_ensemble(a.runs, a.output, weights)


# --- compression and export ----------------------------------------------------------------


@dataclass
class ExportMergedArgs:
    run_dir: Path = req("A LoRA or IA³ run directory (classifier or causal LM).",
                        positional=True)
    output: Path = req("Run directory to write (plain model).")


def _export_merged(a: ExportMergedArgs) -> Path:
    from landfall.compression.merge import export_merged

    return export_merged(a.run_dir, a.output)


@dataclass
class ExportOnnxArgs:
    run_dir: Path = req("A classifier run directory.", positional=True)
    output: Path = req("ONNX run directory to write.")
    quantize: str = arg("none", "none (fp32), dynamic (int8 weights) or static (int8, "
                                "calibrated).")
    calibration: str | None = arg(None, "Static: texts to calibrate on (default: the run's "
                                        "training file).")
    calibration_size: int = arg(256, "Static: calibrate on a seeded sample of this many texts.")
    keep_float: Any = arg((), "int8: comma-separated parts left in fp32 (embeddings, "
                              "layer.<i>, head).")


def _export_onnx(a: ExportOnnxArgs) -> Path:
    from landfall.compression.onnx_export import calibration_texts, export_onnx
    from landfall.inference.loading import run_config

    keep = [p for p in a.keep_float.split(",") if p] if isinstance(a.keep_float, str) \
        else list(a.keep_float)
    texts: list[str] = []
    if a.quantize == "static":
        texts = calibration_texts(run_config(a.run_dir), a.calibration, a.calibration_size)
    return export_onnx(a.run_dir, a.output, quantize=a.quantize, calibration_texts=texts,
                       keep_float=keep)


@dataclass
class CompressArgs:
    run_dir: Path = req("A classifier or causal-LM run directory.", positional=True)
    data: str | None = arg(None, "Classifier: labelled file shaped like the training file "
                                 "(required). Causal LM: requests and responses to score on "
                                 "(default: the run's own validation split).")
    output: Path | None = arg(None, "Run directory to write (the chosen model; required).")
    max_drop: float | None = arg(None, "Budget: at most this many points below the original "
                                       "(classifier: accuracy, default 0.5; causal LM: "
                                       "ROUGE-L, default 1.0).")
    methods: Any = arg(None, "Comma-separated recipes (default: all). Classifier: torch-int8, "
                             "torch-bf16, onnx-fp32, onnx-int8-dynamic, onnx-int8-static, "
                             "prune, prune+onnx-int8-dynamic. Causal LM: torch-bf16, "
                             "torch-int8, gguf-f16, gguf-q8_0, gguf-q4_k_m.")
    include: list[Path] | None = arg(None, "Another run to measure beside them, e.g. a "
                                           "distilled student (repeatable; classifiers).")
    limit: int = arg(0, "Evaluate on a seeded sample of this many documents or requests "
                        "(0 = all for a classifier, 20 for a causal LM).")
    latency_docs: int = arg(50, "Documents timed one by one for the batch-1 latency.")
    calibration: str | None = arg(None, "Static int8: texts to calibrate on (default: the "
                                        "run's training file).")
    calibration_size: int = arg(256, "Static int8: calibration sample size.")
    clients: int = arg(16, "Causal LM: concurrent requests for the aggregate tokens/s.")
    single: int = arg(0, "Causal LM: requests answered one at a time (0 = all): the answers "
                         "scored, the tokens/s and time to first token of one stream; the "
                         "rest are scored from the concurrent pass.")
    max_new_tokens: int = arg(0, "Causal LM: new tokens per answer (0 = the run's "
                                 "generate.max_new_tokens).")
    threads: int = arg(0, "Causal LM: threads of torch and llama.cpp (0 = all cores).")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")


def _compress(a: CompressArgs) -> dict:
    from landfall.inference.loading import run_task

    methods = [m for m in a.methods.split(",") if m] if isinstance(a.methods, str) \
        else a.methods
    if a.output is None:
        raise LandfallError("compress: --output is required (the run directory to write)")
    if run_task(a.run_dir).head == "generate":
        from landfall.compression.decoder import compress_generator

        return compress_generator(a.run_dir, a.data, a.output,
                                  max_drop=1.0 if a.max_drop is None else a.max_drop,
                                  methods=methods or None, requests=a.limit or 20,
                                  clients=a.clients, single=a.single,
                                  max_new_tokens=a.max_new_tokens, threads=a.threads)
    from landfall.compression.pipeline import compress

    if not a.data:
        raise LandfallError("compress: a classifier run needs --data (a labelled file)")
    return compress(a.run_dir, a.data, a.output,
                    max_drop=0.5 if a.max_drop is None else a.max_drop,
                    methods=methods or None,
                    include=a.include or (), limit=a.limit, latency_docs=a.latency_docs,
                    calibration=a.calibration, calibration_size=a.calibration_size,
                    overrides=a.overrides or ())


@dataclass
class PruneArgs:
    run_dir: Path = req("A classifier run directory.", positional=True)
    output: Path = req("Run directory to write.")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")


def _prune(a: PruneArgs) -> dict:
    from landfall.compression.prune import prune_run

    return prune_run(a.run_dir, a.output, a.overrides)


@dataclass
class DistillArgs:
    teacher: Path = req("The teacher: a classifier run directory.")
    output: Path = req("Run directory to write (the student).")
    student: str | None = arg(None, "layers:N (the teacher with N layers) or a model name/dir "
                                    "(distill.student).")
    config: Path | None = arg(None, "TOML or YAML config file.")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")


def _distill(a: DistillArgs) -> dict:
    from landfall.compression.distill import distill

    overrides = [*(a.overrides or []), *([f"distill.student={a.student}"] if a.student else [])]
    return distill(a.teacher, a.output, config=a.config, overrides=overrides)


# --- serving -------------------------------------------------------------------------------


@dataclass
class ServeArgs:
    run_dir: Path = req("A run directory (PyTorch or ONNX).", positional=True)
    settings: dict | None = arg(None, "serve.* fields as a dict (Python callers).", cli=False)
    config: Path | None = arg(None, "TOML or YAML config file (its [serve] section).")
    overrides: list[str] | None = arg(None, "Override a serve field (serve.field=value) or the "
                                            "long-text strategy (data.truncation=sliding...); "
                                            "with --engine ray also ray.field=value.",
                                      flag="--set")
    engine: str = arg("local", "local (uvicorn, one process) or ray (the same app as a Ray "
                               "Serve deployment; its [ray] section: replicas, autoscaling).")
    replicas: int = arg(0, "--engine ray: replicas (default: ray.replicas).")


def _serve(a: ServeArgs) -> None:
    from landfall.apps.assistant.manifest import is_assistant
    from landfall.serving.app import serve

    file = load_config(a.config).to_dict() if a.config else {}
    serve_fields = {**file.get("serve", {}), **(a.settings or {})}
    own = [o for o in a.overrides or [] if o.strip().startswith(("serve.", "ray."))]
    strategy = [o for o in a.overrides or [] if not o.strip().startswith(("serve.", "ray."))]
    built = build_config({"serve": serve_fields, "ray": file.get("ray", {})}, own,
                         source="serve")
    cfg = built.serve
    if is_assistant(a.run_dir):  # the assistant app: its guard and redaction are its own
        from landfall.apps.assistant.service import serve_assistant

        if strategy or cfg.guard or a.engine != "local":
            raise LandfallError(f"{a.run_dir}: an assistant run is served locally, with the "
                                "guard and settings of its own config ([guardrails])")
        serve_safety(a.run_dir, cfg)  # --require-audit
        return serve_assistant(a.run_dir, cfg)
    if a.engine == "ray":
        import functools

        from landfall.scale.ray_serve import run

        ray_cfg = built.ray
        if a.replicas:
            ray_cfg.replicas = a.replicas
        serve_safety(a.run_dir, cfg)  # refuse a failed audit here, before Ray starts
        run(functools.partial(build_service_app, a.run_dir, cfg, strategy), ray_cfg,
            host=cfg.host, port=cfg.port)
        return
    if a.engine != "local":
        raise LandfallError(f"--engine {a.engine!r}: choose local or ray")
    guard, redactor, audit = serve_safety(a.run_dir, cfg)
    serve(a.run_dir, cfg, strategy, guard, redactor, audit)


def build_service_app(run_dir: Path, cfg, strategy: list[str]):
    """The service app ``serve`` runs (safety settings applied): what each Ray Serve replica
    builds."""
    from landfall.serving.app import create_app

    guard, redactor, audit = serve_safety(run_dir, cfg)
    return create_app(run_dir, cfg, strategy, guard, redactor, audit)


def serve_safety(run_dir: Path, cfg) -> tuple[Any, Any, dict | None]:
    """What ``serve.require_audit``, ``serve.guard`` and ``serve.redact_pii`` ask for: refuse a
    run whose audit failed, lacks a required check or judged other content; the guard, the
    log redactor and the audit's summary (shown at /v1/model) the service uses."""
    from landfall.safety.audit import audit_status, audit_summary

    audit = None
    if cfg.require_audit:
        why = audit_status(cfg.require_audit, run_dir)
        if why:
            raise LandfallError(f"serve --require-audit: {why}")
        audit = audit_summary(cfg.require_audit)
    guard = redactor = None
    if cfg.guard:
        from landfall.safety.guard import load_guard

        guard = load_guard(cfg.guard, cfg.harmful_classes, cfg.guard_threshold)
    if cfg.redact_pii:
        from landfall.safety.pii import redactor as make_redactor

        redactor = make_redactor()
    return guard, redactor, audit


# --- safety --------------------------------------------------------------------------------


@dataclass
class AuditArgs:
    run_dir: Path = req("A run directory (classifier, causal LM or masked LM).",
                        positional=True)
    output: Path = req("Folder for audit.json, report.md and plots/.")
    config: Path | None = arg(None, "TOML or YAML file with an [audit] section (thresholds, "
                                    "checks, guard...).")
    overrides: list[str] | None = arg(None, SET_HELP + " (audit.field=value)", flag="--set")


def _audit(a: AuditArgs) -> dict:
    from landfall.safety.audit import run_audit

    cfg = load_config(a.config, a.overrides).audit
    return run_audit(a.run_dir, a.output, cfg)


@dataclass
class ExplainArgs:
    run_dir: Path = req("A classifier run directory (PyTorch).", positional=True)
    text: str = req("The text to explain.")
    output: Path = arg(Path("explain"), "Folder for explain.html, explain.png and "
                                        "explain.json.")
    label: str = arg("", "Explain this class (default: the predicted one).")
    steps: int = arg(32, "Integrated-gradients steps (more: a smaller convergence delta).")


def _explain(a: ExplainArgs) -> dict:
    from landfall.inference.loading import load_run
    from landfall.runs import write_json, write_text
    from landfall.safety.explain import attribute, heatmap_html, heatmap_png

    predictor = load_run(a.run_dir)
    if a.label and a.label not in predictor.labels:
        raise LandfallError(f"--label {a.label!r}: the run's labels are {predictor.labels}")
    target = predictor.labels.index(a.label) if a.label else None
    att = attribute(predictor, a.text, target, steps=a.steps)
    out = Path(a.output)
    write_text(out / "explain.html", heatmap_html([att], f"Why {att.label}?"))
    heatmap_png(att, out / "explain.png")
    record = {"run": str(a.run_dir), "text": a.text, **att.to_json()}
    write_json(out / "explain.json", record)
    return record | {"output": str(out)}


@dataclass
class CleanArgs:
    input: Path = req("A JSONL or CSV/TSV data file.", positional=True)
    output: Path = req("The cleaned file to write (same format; .jsonl or .csv).")
    fields: str = arg("", "Comma-separated text fields to clean (default: every text field).")
    mode: str = arg("redact", "redact (each PII span becomes <TYPE>) or drop (rows with PII "
                              "are left out).")
    entities: str = arg("", "Comma-separated Presidio entity types (default: audit.pii_entities).")
    min_score: float = arg(0.4, "Presidio confidence below which a span is not PII.")


def _clean(a: CleanArgs) -> dict:
    from landfall.safety.clean import clean_file

    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    return clean_file(a.input, a.output, fields=split(a.fields), mode=a.mode,
                      entities=split(a.entities), min_score=a.min_score)


# --- embody --------------------------------------------------------------------------------

_PARSER_HELP = ("A command_parser run directory, or a baseline: rules (BabyAI's grammar) or "
                "smollm2-fewshot.")
_POLICY_HELP = ("Shield policy, ';'-separated (e.g. 'never pick up keys; never open red "
                "doors; avoid cell 3,4'); same as --set shield.forbid=...")


def _shield(policy: str, overrides: list[str] | None):
    from landfall.embody.shield import Shield

    sets = list(overrides or [])
    if policy:
        sets.append(f"shield.forbid={policy}")
    bad = [s for s in sets if not s.strip().startswith("shield.")]
    if bad:
        raise LandfallError(f"--set {bad[0]!r}: only shield.* fields apply here")
    cfg = build_config({"task": {"name": "command_parser"}}, sets, source="embody")
    return Shield.from_config(cfg.shield)


@dataclass
class EmbodyRunArgs:
    run_dir: str = req(_PARSER_HELP, positional=True)
    level: str = req("BabyAI level, e.g. BabyAI-GoToLocal-v0.")
    command: str = req("The command, in your own words.")
    seed: int = arg(0, "World seed.")
    gif: Path | None = arg(None, "Write the execution as an animated GIF here.")
    png: Path | None = arg(None, "Write the world after the command as a PNG here.")
    policy: str = arg("", _POLICY_HELP)
    overrides: list[str] | None = arg(None, "Shield fields: shield.forbid=..., "
                                            "shield.dry_run=false, shield.max_steps=N.",
                                      flag="--set")


def _embody_run(a: EmbodyRunArgs) -> dict:
    from landfall.embody.render import write_gif, write_png
    from landfall.embody.session import Session
    from landfall.embody.systems import load_system

    session = Session(load_system(a.run_dir), a.level, a.seed, _shield(a.policy, a.overrides),
                      frames=a.gif is not None)
    before = session.frame()
    out = session.command(a.command)
    result = {"level": a.level, "seed": a.seed, "mission": session.mission, **out.to_dict(),
              "notes": out.verdict.notes}
    if a.gif is not None:
        result["gif"] = str(write_gif(out.frames or [before], a.gif))
    if a.png is not None:
        result["png"] = str(write_png(session.frame(), a.png))
    return result


@dataclass
class EmbodyEvalArgs:
    run_dir: str = req(_PARSER_HELP, positional=True)
    output: Path = req("Directory for eval.json (success_rate overall and per level) and "
                       "episodes.jsonl.")
    levels: str | None = arg(None, "Comma-separated BabyAI levels: score their own missions.")
    episodes: int = arg(500, "With --levels: episodes per level (seeds from --seed).")
    seed: int = arg(1_000_000, "With --levels: first seed (1,000,000 on are never trained "
                               "on).")
    commands: Path | None = arg(None, "JSONL of {level, seed, command} (free-form commands; "
                                      "optional policy and expect=refuse|accept score the "
                                      "shield).")
    policy: str = arg("", _POLICY_HELP)
    overrides: list[str] | None = arg(None, "Shield fields (shield.*).", flag="--set")
    min_confidence: float | None = arg(None, "Refuse a parse when the tagger is less sure "
                                             "than this of any word's tag (default: the "
                                             "run's command_parser.min_confidence).")


def _embody_eval(a: EmbodyEvalArgs) -> dict:
    from landfall.embody.evaluate import evaluate_commands, evaluate_missions
    from landfall.embody.systems import load_system

    if bool(a.levels) == bool(a.commands):
        raise LandfallError("give either --levels (the environments' own missions) or "
                            "--commands FILE")
    parser = load_system(a.run_dir, min_confidence=a.min_confidence)
    shield = _shield(a.policy, a.overrides)
    if a.commands:
        return evaluate_commands(parser, a.commands, a.output, shield=shield)
    levels = [x.strip() for x in a.levels.split(",") if x.strip()]
    return evaluate_missions(parser, levels, a.episodes, a.output, seed=a.seed, shield=shield)


@dataclass
class EmbodyInteractiveArgs:
    run_dir: str = req(_PARSER_HELP, positional=True)
    level: str = arg("BabyAI-GoToLocal-v0", "BabyAI level.")
    seed: int = arg(0, "World seed.")
    png: Path | None = arg(None, "Redraw the world into this PNG after every command.")
    policy: str = arg("", _POLICY_HELP)
    overrides: list[str] | None = arg(None, "Shield fields (shield.*).", flag="--set")


def _embody_interactive(a: EmbodyInteractiveArgs) -> int:
    from landfall.embody.interactive import interactive
    from landfall.embody.session import Session
    from landfall.embody.systems import load_system

    session = Session(load_system(a.run_dir), a.level, a.seed, _shield(a.policy, a.overrides))
    return interactive(session, png=a.png)


# --- the assistant (apps/assistant) --------------------------------------------------------


@dataclass
class AssistantBuildArgs:
    output: Path = req("The assistant's run directory (a build that stopped continues "
                       "where it was: trained members are kept).")
    cfg: Any = arg(None, "The assistant's TOML or YAML config (e.g. "
                         "examples/bitext-assistant.toml), or from Python a Config.",
                   flag="--config")
    overrides: list[str] | None = arg(None, SET_HELP, flag="--set")


def _assistant_build(a: AssistantBuildArgs) -> dict:
    from landfall.apps.assistant.build import build

    return build(_settle(a.cfg, a.overrides, False, a.output), a.output)


@dataclass
class AssistantEvalArgs:
    run_dir: Path = req("An assistant run directory.", positional=True)
    data: Path = req("CSV/JSONL shaped like the Bitext file (request, reference response, "
                     "intent); rows of intent out_of_scope must be handed off, harmful ones "
                     "refused, and may have no reference.")
    output: Path = req("Directory for eval.json, replies.jsonl and report.md.")
    limit: int = arg(0, "Score a seeded stratified sample of this many rows (0 = all).")
    components: bool = arg(True, "Also score each single component on the same rows "
                                 "(template-only, retrieval-only, generator alone, generator "
                                 "with retrieval).")
    latency_rows: int = arg(20, "Rows on which each generating component's latency is "
                                "timed one request at a time (its quality uses every row).")


def _assistant_eval(a: AssistantEvalArgs) -> dict:
    from landfall.apps.assistant.evaluate import evaluate

    return evaluate(a.run_dir, a.data, a.output, limit=a.limit, components=a.components,
                    latency_rows=a.latency_rows)


@dataclass
class AssistantAddDocsArgs:
    run_dir: Path = req("An assistant run directory.", positional=True)
    files: list[Path] = req("Knowledge files (.jsonl: title/question, text/answer, intent; .md: "
                            "one document per heading).", positional=True)


def _assistant_add_docs(a: AssistantAddDocsArgs) -> dict:
    from landfall.apps.assistant.knowledge import add_documents

    return add_documents(a.run_dir, a.files)


# --- the table -----------------------------------------------------------------------------

_TRAIN_SECTIONS = ("task", "model", "data", "chat", "train", "peft", "report", "oos",
                   "generate")

VERBS: list[Verb] = [
    Verb("train", TrainArgs, _train,
         "Train a run of any task (task.name: classification, mlm, causal_lm): model/, "
         "landfall.toml, metrics, eval.json, report, plots.", _TRAIN_SECTIONS),
    Verb("pretrain", TrainArgs, _pretrain,
         "Masked-LM (continued) pretraining on unlabelled text (train with task.name=mlm); "
         "model/ feeds `landfall train`.", ("model", "data", "train", "pretrain", "report")),
    Verb("evaluate", EvaluateArgs, _evaluate,
         "Score a run on a labelled file. Classifier: accuracy, macro-F1, per-class P/R, ECE, "
         "confusion. Generation run: ROUGE-1/2/L, MiniLM similarity, lengths, entity "
         "carry-over, per category, beside the baselines. JSON + PNG + report.md."),
    Verb("predict", PredictArgs, _predict,
         "Label every text of a file; output rows follow the input order; streams and "
         "resumes."),
    Verb("generate", GenerateArgs, _generate,
         "Write a response to every request: batched with the KV cache, greedy or seeded "
         "sampling, stop strings; streams to disk and resumes after an interruption.",
         ("generate",)),
    Verb("ensemble", EnsembleArgs, _ensemble,
         "Average several classifier runs' class probabilities; predict and evaluate take "
         "the result."),
    Verb("export-merged", ExportMergedArgs, _export_merged,
         "Fold a LoRA/IA³ adapter into the base weights: a plain transformers model."),
    Verb("export-onnx", ExportOnnxArgs, _export_onnx,
         "Export a classifier run to ONNX Runtime (graph-optimised; optionally int8); "
         "predict/evaluate load the result like the original."),
    Verb("compress", CompressArgs, _compress,
         "Try quantisation and pruning recipes, measure each here, keep the smallest within "
         "the accuracy budget; writes a Markdown/JSON table and a Pareto plot.",
         ("prune", "data")),
    Verb("prune", PruneArgs, _prune,
         "Remove the least important attention heads and FFN neurons, then fine-tune "
         "briefly.", ("prune",)),
    Verb("distill", DistillArgs, _distill,
         "Knowledge distillation: a smaller student learns the teacher's soft targets (and "
         "the labels).", ("distill", "train")),
    Verb("serve", ServeArgs, _serve,
         "Serve a run over HTTP: POST /v1/classify, /v1/model, /healthz, /readyz, /metrics, "
         "/docs.", ("serve",), flags_from="serve"),
    Verb("demo", DemoArgs, _demo,
         "The main job: fine-tune MiniLM on BANKING77 intents on a ~10-minute CPU budget, "
         "score it and a TF-IDF baseline on held-out queries, print what to try next.",
         _TRAIN_SECTIONS),
    # --- safety (audit, guard, explain, data clean) ---
    Verb("audit", AuditArgs, _audit,
         "Responsible-AI audit of a run: counterfactual fairness, CheckList tests, stereotype "
         "bias, PII, harmful outputs, attribution faithfulness; report + JSON + PNGs; exit 1 "
         "on a failed threshold.", ("audit",)),
    Verb("explain", ExplainArgs, _explain,
         "Token attributions of a classifier's prediction (integrated gradients on the input "
         "embeddings, with Captum's convergence delta): HTML heat map and PNG."),
    Verb("data clean", CleanArgs, _clean,
         "Find PII (Presidio) in a data file's text fields; redact it or drop the rows; "
         "counts per entity type."),
    # --- embody (BabyAI command parser, run, eval) ---
    Verb("embody run", EmbodyRunArgs, _embody_run,
         "Parse a command, ground it in a BabyAI world, shield it, execute it with BabyAI's "
         "bot and judge it by the world's own check; prints the plan or why it was refused.",
         ("shield",)),
    Verb("embody eval", EmbodyEvalArgs, _embody_eval,
         "Parse exact match and grounded success, per level, on the environments' own "
         "missions (--levels) or a file of free-form commands (--commands).", ("shield",)),
    Verb("embody interactive", EmbodyInteractiveArgs, _embody_interactive,
         "Command the agent step by step in the terminal; the world is shown after each "
         "command.", ("shield",)),
    # --- the assistant (intents, templates, retrieval, generator, guard) ---
    Verb("assistant build", AssistantBuildArgs, _assistant_build,
         "Build the customer-service assistant: train or adopt its member runs, mine answer "
         "templates, index the knowledge base, choose the routing thresholds on tuning rows.",
         ("assistant", "members", "retrieval", "routing", "conversation", "guardrails")),
    Verb("assistant eval", AssistantEvalArgs, _assistant_eval,
         "Score an assistant on a Bitext-shaped file: intent accuracy, route shares, ROUGE-L "
         "and cosine, latency per route, hand-off and refusal rates, beside each single "
         "component on the same rows."),
    Verb("assistant add-docs", AssistantAddDocsArgs, _assistant_add_docs,
         "Add documents (JSONL or Markdown) to a built assistant's knowledge base; nothing is "
         "retrained."),
]
VERB = {v.name: v for v in VERBS}


def _api_function(verb: Verb) -> Callable[..., Any]:
    """A module-level function with the verb's argument dataclass as its signature."""
    params = []
    for f in dataclasses.fields(verb.args):
        required = f.metadata.get("required", False)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(f.name, kind, default=inspect.Parameter.empty
                                        if required else f.default))

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = call.__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        return verb.run(verb.args(**bound.arguments))

    call.__signature__ = inspect.Signature(params)
    call.__name__ = call.__qualname__ = verb.py_name
    call.__doc__ = verb.help + "\n\n" + "\n".join(
        f"``{f.name}``: {f.metadata['help']}" for f in dataclasses.fields(verb.args))
    return call


for _verb in VERBS:
    if _verb.api:
        globals()[_verb.py_name] = _api_function(_verb)

__all__ = [v.py_name for v in VERBS if v.api] + ["demo_config", "demo_data", "load_config",
                                                  "Config", "VERBS"]
