"""Knowledge distillation: a smaller student learns the teacher run's soft targets.

The student is the teacher with fewer layers (``layers:N``: N evenly spaced layers — for 6 → 3
the DistilBERT recipe, every other layer — with the teacher's embeddings and head), or any
other model (a different size or family, with its own tokenizer). The loss is Hinton et al.'s:
``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)`` on the labelled
training set, plus the soft term alone on unlabelled transfer texts (``distill.transfer``).

The teacher scores every document once, before training, through the same Predictor (and so
the same long-text strategy) as ``landfall predict``: its logits are a fixed table, which
keeps a resumed or repeated run deterministic and costs one forward pass per document instead
of one per epoch. Students with another tokenizer get the teacher's per-document logits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landfall.errors import LandfallError
from landfall.tasks.classification.objective import Classification


@dataclass
class Distillation(Classification):
    """Classification whose loss follows the teacher; ``y == -1`` marks transfer items."""

    teacher_logits: np.ndarray | None = None  # (n_items, n_labels)
    temperature: float = 2.0
    alpha: float = 0.5

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        from landfall.data.batching import collate, pad_multiple

        batch = collate([self.windows[i] for i in idx], self.predictor.pad_id,
                        pad_multiple(device))
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            logits = model(**batch).logits
        s = logits.float()
        t = torch.as_tensor(self.teacher_logits[idx], device=device)
        temp = self.temperature
        soft = torch.nn.functional.kl_div(
            torch.log_softmax(s / temp, -1), torch.log_softmax(t / temp, -1),
            log_target=True, reduction="none").sum(-1) * temp**2
        y = torch.as_tensor([self.y[i] for i in idx], device=device)
        labelled = y >= 0
        hard = torch.nn.functional.cross_entropy(s, y.clamp(min=0), reduction="none")
        per_item = torch.where(labelled, self.alpha * soft + (1 - self.alpha) * hard, soft)
        return per_item.sum() / n


def layer_student(teacher: torch.nn.Module, n_layers: int) -> torch.nn.Module:
    """A copy of ``teacher`` keeping ``n_layers`` evenly spaced encoder layers."""
    student = copy.deepcopy(teacher)
    encoder = getattr(student.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise LandfallError(f"distill.student=layers:N needs an encoder with .layer "
                            f"(bert, roberta, mpnet); got {teacher.config.model_type!r}: "
                            "name a student model instead")
    total = len(layers)
    if not 1 <= n_layers < total:
        raise LandfallError(f"distill.student=layers:{n_layers}: the teacher has {total} "
                            f"layers; choose 1 to {total - 1}")
    keep = [i * total // n_layers for i in range(n_layers)]
    encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
    student.config.num_hidden_layers = n_layers
    return student


def _config(teacher_run: Path, config_file: str | Path | None, overrides: list[str] | None):
    """The teacher's saved config, then a file's sections, then ``--set`` overrides."""
    from landfall import runs
    from landfall.config import build_config, load_file

    data = load_file(teacher_run / runs.CONFIG) if (teacher_run / runs.CONFIG).exists() else {}
    if config_file:
        for section, values in load_file(config_file).items():
            data.setdefault(section, {}).update(values)
    return build_config(data, ["report.baseline=false", *(overrides or [])],
                        source=str(config_file or teacher_run / runs.CONFIG))


def distill(teacher_run: str | Path, output: str | Path, *, config: str | Path | None = None,
            overrides: list[str] | None = None) -> dict:
    """Train a student on the teacher run's soft targets; write a run directory at ``output``
    and return its evaluation."""
    import dataclasses

    from landfall.compression.retrain import begin, fit_and_report
    from landfall.config import expand_env
    from landfall.data.prepare import prepare
    from landfall.data.readers import read_texts
    from landfall.data.tokens import tokenize
    from landfall.data.windows import make_windows
    from landfall.inference.loading import load_run

    teacher_run = Path(teacher_run)
    cfg = _config(teacher_run, config, overrides)
    d = cfg.distill
    teacher = load_run(teacher_run, batch_size=cfg.train.eval_batch_size, device="cpu")
    if not isinstance(teacher.model, torch.nn.Module):
        raise LandfallError(f"{teacher_run}: the teacher must be a PyTorch run, not ONNX")
    if hasattr(teacher.model, "merge_and_unload"):
        from landfall.inference.adapters import merged

        teacher.model = merged(teacher.model)
    if d.student.startswith("layers:"):
        try:
            n = int(d.student.split(":", 1)[1])
        except ValueError:
            raise LandfallError(f"distill.student={d.student!r}: expected layers:N") from None
        student, tokenizer = layer_student(teacher.model, n), teacher.tokenizer
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=str(
            teacher_run / "model")))
    else:
        from landfall.tasks.classification.model import load_classifier

        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=d.student))
        from transformers import AutoTokenizer

        from landfall.hub import resolve_model
        from landfall.training.adapters import wrap

        student = wrap(load_classifier(cfg, teacher.labels), cfg.peft)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model.name))
    data = prepare(cfg.data, tokenizer, cfg.train.seed)
    if data.labels != teacher.labels:
        raise LandfallError(f"the training data's labels {data.labels} differ from the "
                            f"teacher's {teacher.labels}")

    texts = [e.text for e in data.train.examples]
    docs, y = list(data.train.docs), list(data.train.y)
    if d.transfer:
        extra = read_texts(expand_env(d.transfer, "distill.transfer"),
                           text_field=cfg.data.text_field, limit=d.transfer_limit or None)
        texts += [e.text for e in extra]
        docs += tokenize([e.text for e in extra], tokenizer, desc="tokenising transfer")
        y += [-1] * len(extra)
    same_tokens = tokenizer is teacher.tokenizer
    teacher_docs = docs if same_tokens else tokenize(texts, teacher.tokenizer)
    print(f"teacher scores {len(teacher_docs)} documents", flush=True)
    doc_logits = teacher.predict_tokens(teacher_docs, progress=True).logits

    out_dir = begin(cfg, output)

    def objective(pred):
        windows, owner = make_windows(docs, pred.spec, pred.add_special)
        return Distillation(windows, [y[o] for o in owner], data.validation.docs,
                            data.validation.y, pred, cfg.train.metric,
                            teacher_logits=doc_logits[np.asarray(owner)],
                            temperature=d.temperature, alpha=d.alpha)

    return fit_and_report(cfg, out_dir, student, tokenizer, data, objective,
                          {"teacher": str(teacher_run), "student": d.student,
                           "transfer_texts": len(docs) - len(data.train.docs)})
