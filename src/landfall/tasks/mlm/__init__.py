"""Masked-language-model (continued) pretraining on unlabelled text."""

from __future__ import annotations

from landfall.config import Config
from landfall.errors import ConfigError
from landfall.tasks import register
from landfall.tasks.base import Task, TrainContext
from landfall.tasks.mlm import config as _config  # noqa: F401  (registers [pretrain])


class MaskedLMTask(Task):
    name = "mlm"
    summary = "masked-LM pretraining; model/ feeds a classification run (model.name=RUN/model)"
    auto_class = "AutoModelForMaskedLM"
    peft_task_type = "FEATURE_EXTRACTION"
    verbs = frozenset({"pseudo-log-likelihood"})
    head = "objective"

    def validate(self, cfg: Config) -> None:
        if cfg.peft.method != "none":
            raise ConfigError("task mlm: peft adapters are not offered for pretraining")

    def prepare(self, cfg: Config, tokenizer):
        from landfall.tasks.mlm.data import prepare_chunks

        if tokenizer.mask_token_id is None:
            raise ConfigError(f"{cfg.model.name}: its tokenizer has no mask token")
        return prepare_chunks(cfg, tokenizer)

    def build_model(self, cfg: Config, data, tokenizer):
        from landfall.tasks.mlm.model import load_mlm

        return load_mlm(cfg, tokenizer)

    def objective(self, cfg: Config, data, model, tokenizer, ctx: TrainContext):
        from landfall.tasks.mlm.masking import word_starts
        from landfall.tasks.mlm.objective import MaskedLM

        obj = MaskedLM(
            data.train, data.heldout, pad_id=tokenizer.pad_token_id,
            mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
            special_ids=sorted(set(tokenizer.all_special_ids)),
            prob=cfg.pretrain.mlm_probability,
            starts=word_starts(tokenizer) if cfg.pretrain.whole_word else None,
            eval_seed=cfg.train.seed, model=model, eval_batch_size=cfg.train.eval_batch_size,
        )
        before, _ = obj.evaluate()  # the starting point, for the report
        data.initial_perplexity = before["eval_perplexity"]
        return obj

    def summarize(self, cfg: Config, data, records: list[dict]) -> dict:
        evals = [r for r in records if "eval_perplexity" in r]
        best = min(evals, key=lambda r: r["eval_perplexity"]) if evals else {}
        return {
            "heldout": {"perplexity": best.get("eval_perplexity"), "loss": best.get("eval_loss"),
                        "step": best.get("step"), "chunks": len(data.heldout),
                        "initial_perplexity": data.initial_perplexity},
            "data": {"train": data.source},
            "train_extra": {"chunks": len(data.train), "documents": data.documents},
        }


    def write_report(self, run_dir, result: dict, plots: dict[str, str]):
        from landfall.tasks.mlm.report import write_mlm_report

        return write_mlm_report(run_dir, result, plots)


TASK = register(MaskedLMTask())
