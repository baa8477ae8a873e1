"""Single-label text classification (sentiment, intents with out-of-scope rejection)."""

from __future__ import annotations

from landfall.config import Config
from landfall.errors import LandfallError
from landfall.tasks import register
from landfall.tasks.base import Task, TrainContext
from landfall.tasks.classification import config as _config  # noqa: F401  (registers [oos])


class ClassificationTask(Task):
    name = "classification"
    summary = "labels for texts of any length (windows), with an optional out-of-scope rule"
    auto_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    verbs = frozenset({"predict", "evaluate", "serve", "ensemble", "compress", "prune",
                       "distill", "export-merged", "export-onnx", "gradients"})
    head = "classify"

    def prepare(self, cfg: Config, tokenizer):
        from landfall.data.prepare import prepare
        from landfall.tasks.classification.oos import check_oos_data

        data = prepare(cfg.data, tokenizer, cfg.train.seed)
        check_oos_data(cfg.oos, data.labels, data.validation.y, data.train_source)
        return data

    def build_model(self, cfg: Config, data, tokenizer):
        from landfall.tasks.classification.model import load_classifier

        return load_classifier(cfg, data.labels)

    def objective(self, cfg: Config, data, model, tokenizer, ctx: TrainContext):
        from landfall.data.windows import WindowSpec, make_windows, special_tokens
        from landfall.tasks.classification.model import max_positions
        from landfall.tasks.classification.objective import Classification, class_weights

        spec = WindowSpec.from_config(cfg.data, sum(map(len, special_tokens(tokenizer))))
        spec.validate()
        limit = max_positions(model.config)
        if limit and spec.max_length > limit:
            raise LandfallError(f"data.max_length={spec.max_length} exceeds what "
                                f"{cfg.model.name} can read ({limit} tokens)")
        predictor = ctx.make_predictor(model, tokenizer, data.labels, spec,
                                       batch_size=cfg.train.eval_batch_size)
        windows, owner = make_windows(data.train.docs, spec, predictor.add_special)
        ctx.extras["train_windows"] = len(windows)
        y = [data.train.y[d] for d in owner]
        weight = class_weights(y, len(data.labels), cfg.train.class_weight)
        soft = None
        if data.train.votes is not None and cfg.train.vote_weight > 0:
            a = cfg.train.vote_weight
            soft = [[a * v + (1 - a) * (c == data.train.y[d])
                     for c, v in enumerate(data.train.votes[d])] for d in owner]
        return Classification(windows, y, data.validation.docs, data.validation.y, predictor,
                              cfg.train.metric, weight, soft)


TASK = register(ClassificationTask())
