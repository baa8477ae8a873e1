"""The likelihood heads of language models, for stereotype benchmarks (CrowS-Pairs,
StereoSet): pseudo-log-likelihood of a masked LM (Salazar et al. 2020: mask one token at a
time, sum the log-probabilities of the masked tokens) and the log-likelihood of a causal LM
(``Generator.log_likelihood``, reached through ``load_scorer``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from landfall.data.batching import inference_batches
from landfall.errors import LandfallError
from landfall.utils.progress import progress_bar


class MaskedLMScorer:
    """Pseudo-log-likelihoods of chosen token positions under a masked LM."""

    kind = "masked"

    def __init__(self, path: str | Path, batch_size: int = 128, device: str | None = None):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.mask_token_id is None:
            raise LandfallError(f"{path}: its tokenizer has no mask token")
        self.model = AutoModelForMaskedLM.from_pretrained(path).float().eval()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.batch_size = batch_size

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids (special tokens included) and each token's character span."""
        enc = self.tokenizer(text, return_offsets_mapping=True)
        return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]

    def _masked_logits(self, ids: torch.Tensor, att: torch.Tensor,
                       where: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits at one position per row. The LM head runs on those positions
        only: over every position it is most of the work (30 k logits per token)."""
        rows = torch.arange(len(where))
        head = getattr(self.model, "cls", None) or getattr(self.model, "lm_head", None)
        ids, att = ids.to(self.device), att.to(self.device)
        if head is None:  # an architecture whose head we do not know: all positions
            return self.model(input_ids=ids, attention_mask=att).logits[rows, where].float()
        hidden = self.model.base_model(input_ids=ids, attention_mask=att).last_hidden_state
        return head(hidden[rows, where.to(self.device)]).float()

    @torch.inference_mode()
    def pll(self, seqs: Sequence[list[int]], positions: Sequence[Sequence[int]],
            progress: bool = False) -> list[list[float]]:
        """For each sequence, log p(token | the rest) of each of its ``positions``, that token
        masked (one forward pass per masked copy, batched by length)."""
        jobs = [(s, j, p) for s, ps in enumerate(positions) for j, p in enumerate(ps)]
        out: list[list[float]] = [[0.0] * len(ps) for ps in positions]
        mask_id = self.tokenizer.mask_token_id
        pad = self.tokenizer.pad_token_id or 0
        batches = inference_batches([len(seqs[s]) for s, _, _ in jobs], self.batch_size)
        with progress_bar(total=len(jobs), desc="pseudo-log-likelihood", unit="mask",
                          disable=not progress) as bar:
            for idx in batches:
                width = max(len(seqs[jobs[i][0]]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                att = torch.zeros_like(ids)
                for row, i in enumerate(idx):
                    s, _, p = jobs[i]
                    ids[row, : len(seqs[s])] = torch.as_tensor(seqs[s])
                    att[row, : len(seqs[s])] = 1
                    ids[row, p] = mask_id
                where = torch.as_tensor([jobs[i][2] for i in idx])
                logp = torch.log_softmax(self._masked_logits(ids, att, where), -1)
                for row, i in enumerate(idx):
                    s, j, p = jobs[i]
                    out[s][j] = float(logp[row, seqs[s][p]])
                bar.update(len(idx))
        return out


class CausalLMScorer:
    """Log-likelihoods of whole texts under a causal LM."""

    kind = "causal"

    def __init__(self, generator) -> None:
        self.generator = generator
        self.tokenizer = generator.tokenizer

    def log_likelihood(self, texts: Sequence[str], per_token: bool = False,
                       progress: bool = False) -> list[float]:
        return self.generator.log_likelihood(texts, per_token=per_token, progress=progress)


def load_scorer(source: str | Path):
    """A scorer for a run directory (mlm or causal_lm) or a model name/directory: masked LMs
    get pseudo-log-likelihoods, causal LMs log-likelihoods."""
    from transformers import AutoConfig

    from landfall.hub import resolve_model
    from landfall.inference.loading import load_generation_run, model_dir, run_task

    path = Path(source)
    if (path / "landfall.toml").exists():
        task = run_task(path)
        if task.supports("generate"):
            return CausalLMScorer(load_generation_run(path))
        if not task.supports("pseudo-log-likelihood"):
            raise LandfallError(f"{path}: a {task.name} run has no language-model head; "
                                "audit the mlm run it was trained from (landfall pretrain)")
        return MaskedLMScorer(model_dir(path))
    path = resolve_model(str(source))
    arch = " ".join(AutoConfig.from_pretrained(path).architectures or [])
    if "CausalLM" in arch:
        from landfall.inference.generator import load_generator
        from landfall.tasks.causal_lm.config import ChatConfig

        return CausalLMScorer(load_generator(path, None, ChatConfig()))
    return MaskedLMScorer(path)
