"""Causal-LM supervised fine-tuning: a decoder learns to write the response to a request."""

from __future__ import annotations

from landfall.config import Config
from landfall.errors import ConfigError
from landfall.tasks import register
from landfall.tasks.base import Task, TrainContext
from landfall.tasks.causal_lm import config as _config  # noqa: F401  (registers [chat], [generate])


class CausalLMTask(Task):
    name = "causal_lm"
    summary = "instruction/response fine-tuning of a decoder (loss on the response only)"
    auto_class = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    verbs = frozenset({"generate", "evaluate", "serve", "export-merged", "log-likelihood"})
    head = "generate"

    def validate(self, cfg: Config) -> None:
        if cfg.peft.method not in ("none", "lora", "ia3"):
            raise ConfigError(f"task causal_lm: peft.method={cfg.peft.method} is not offered "
                              "(none, lora or ia3)")

    def load_tokenizer(self, cfg: Config):
        from landfall.tasks.causal_lm.model import ensure_pad

        tokenizer = super().load_tokenizer(cfg)
        ensure_pad(tokenizer)
        return tokenizer

    def prepare(self, cfg: Config, tokenizer):
        from landfall.tasks.causal_lm.data import prepare_chat

        return prepare_chat(cfg, tokenizer)

    def build_model(self, cfg: Config, data, tokenizer):
        from landfall.errors import DataError
        from landfall.tasks.causal_lm.model import context_length, load_causal_lm

        model = load_causal_lm(cfg)
        limit = context_length(model.config)
        for records, items in ((data.train, data.train_items),
                               (data.validation, data.validation_items)):
            for r, t in zip(records, items, strict=True):
                if limit and len(t.ids) > limit:
                    raise DataError(f"request and response are {len(t.ids)} tokens, more than "
                                    f"the model's context ({limit})", path=r.source,
                                    line=r.line, field=cfg.chat.request_field)
        return model

    def objective(self, cfg: Config, data, model, tokenizer, ctx: TrainContext):
        from landfall.tasks.causal_lm.objective import CausalLM

        return CausalLM(data.train_items, data.validation_items, tokenizer.pad_token_id,
                        model=model, eval_batch_size=cfg.train.eval_batch_size)

    def summarize(self, cfg: Config, data, records: list[dict]) -> dict:
        evals = [r for r in records if "eval_loss" in r]
        best = min(evals, key=lambda r: r["eval_loss"]) if evals else {}
        return {"validation_loss": {"loss": best.get("eval_loss"),
                                    "perplexity": best.get("eval_perplexity"),
                                    "step": best.get("step")},
                "data": {"train": data.train_source, "validation": data.validation_source,
                         "n_train": len(data.train), "n_validation": len(data.validation)}}


TASK = register(CausalLMTask())
