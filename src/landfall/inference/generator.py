"""The generation head: requests in, written responses out, batched with the KV cache.

Prompts are formatted with the run's chat template (``tasks.causal_lm.chat``), sorted by
length, left-padded (a decoder continues where the prompt ends) and decoded together by
transformers' ``generate`` with its KV cache; greedy or sampled (temperature, top-p, top-k),
seeded per batch from the seed and the batch's prompts, so the same input, settings and seed
give the same text (a resumed file too: batches never cross a chunk boundary). Stop strings
end a sequence early (transformers' ``stop_strings`` criterion); the text is cut before the
first one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from landfall.data.batching import inference_batches
from landfall.errors import LandfallError
from landfall.tasks.causal_lm.chat import encode, prompt_text, stop_ids
from landfall.tasks.causal_lm.config import ChatConfig, GenerateConfig
from landfall.utils.progress import progress_bar


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    finish: str  # "stop" (end of turn or a stop string) or "length" (max_new_tokens)


def stop_strings(settings: GenerateConfig) -> list[str]:
    return [s for s in settings.stop.split("|") if s]


def _cut(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    at = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)


def check_prompt(ids: list[int], settings: GenerateConfig, chat: ChatConfig, context: int,
                 where: str = "prompt", new_field: str = "generate.max_new_tokens") -> None:
    """Refuse a prompt over ``chat.max_prompt_tokens``, or one that with
    ``settings.max_new_tokens`` (named ``new_field`` in the message) overflows the model's
    ``context`` (0 = unknown)."""
    if len(ids) > chat.max_prompt_tokens:
        raise LandfallError(f"{where}: {len(ids)} tokens with the chat template, more than "
                            f"chat.max_prompt_tokens={chat.max_prompt_tokens}")
    if context and len(ids) + settings.max_new_tokens > context:
        raise LandfallError(f"{where}: {len(ids)} prompt tokens + {new_field}="
                            f"{settings.max_new_tokens} exceed the model's context "
                            f"({context} tokens)")


class Generator:
    """A causal LM and its tokenizer, with the chat settings it was trained with."""

    def __init__(self, model: torch.nn.Module, tokenizer, chat: ChatConfig,
                 device: torch.device | str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.chat = chat
        self.device = torch.device(device) if device else next(model.parameters()).device
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = stop_ids(tokenizer)
        self.context = int(getattr(self._config(), "max_position_embeddings", 0) or 0)

    def _config(self):
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") \
            else self.model
        return inner.config

    def prompt_ids(self, request: str | Sequence[dict]) -> list[int]:
        return encode(self.tokenizer, prompt_text(self.tokenizer, request,
                                                  self.chat.system_prompt))

    def check_prompt(self, ids: list[int], settings: GenerateConfig, where: str = "prompt",
                     new_field: str = "generate.max_new_tokens") -> None:
        check_prompt(ids, settings, self.chat, self.context, where, new_field)

    @torch.inference_mode()
    def generate_ids(self, prompts: Sequence[list[int]], settings: GenerateConfig
                     ) -> list[Generation]:
        """Decode every prompt (token ids, template applied); results in input order."""
        out: list[Generation | None] = [None] * len(prompts)
        for idx in inference_batches([len(p) for p in prompts], settings.batch_size):
            for i, g in zip(idx, self._batch([prompts[i] for i in idx], settings), strict=True):
                out[i] = g
        return out  # type: ignore[return-value]

    def _batch(self, prompts: list[list[int]], settings: GenerateConfig) -> list[Generation]:
        tok = self.tokenizer
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding
            ids[row, width - len(p):] = torch.as_tensor(p, dtype=torch.long)
            mask[row, width - len(p):] = 1
        stops = stop_strings(settings)
        kw = {}
        if settings.do_sample:
            kw.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p,
                      top_k=settings.top_k or None)
            digest = hashlib.sha256(repr((settings.seed, prompts)).encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stops:
            kw.update(stop_strings=stops, tokenizer=tok)
        if settings.repetition_penalty != 1.0:
            kw["repetition_penalty"] = settings.repetition_penalty
        was_training = self.model.training
        self.model.eval()
        try:
            seqs = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=settings.max_new_tokens, eos_token_id=self.stop_ids,
                pad_token_id=tok.pad_token_id, use_cache=True, **kw)
        finally:
            self.model.train(was_training)
        results = []
        for row, p in enumerate(prompts):
            new = seqs[row, width:].tolist()
            ended = next((j for j, t in enumerate(new) if t in self.stop_ids), None)
            if ended is not None:
                new = new[:ended]
            text, cut = _cut(tok.decode(new, skip_special_tokens=True), stops)
            finish = "stop" if ended is not None or cut else "length"
            results.append(Generation(text.strip(), len(p), len(new), finish))
        return results

    @torch.inference_mode()
    def log_likelihood(self, texts: Sequence[str], batch_size: int = 16,
                       per_token: bool = False, progress: bool = False) -> list[float]:
        """Sum of the log-probabilities of each text's tokens after the first (plain text, no
        chat template): the score of stereotype tests such as CrowS-Pairs; ``per_token``: the
        mean instead (StereoSet compares sentences of different lengths)."""
        tok = self.tokenizer
        seqs = [encode(tok, t) for t in texts]
        out = [0.0] * len(seqs)
        bar = progress_bar(total=len(seqs), desc="log-likelihood", unit="text",
                           disable=not progress)
        for idx in inference_batches([len(s) for s in seqs], batch_size):
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = torch.as_tensor(seqs[i])
                mask[row, : len(seqs[i])] = 1
            logits = self.model(input_ids=ids.to(self.device),
                                attention_mask=mask.to(self.device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], -1).gather(
                -1, ids[:, 1:, None].to(self.device))[..., 0]
            sums = (logp * mask[:, 1:].to(self.device)).sum(1).tolist()
            counts = mask[:, 1:].sum(1).clamp(min=1).tolist()
            for row, i in enumerate(idx):
                out[i] = sums[row] / counts[row] if per_token else sums[row]
            bar.update(len(idx))
        bar.close()
        return out

    def generate(self, requests: Sequence[str | Sequence[dict]], settings: GenerateConfig,
                 progress: bool = False) -> list[Generation]:
        """Responses to requests (texts or chat message lists), in input order."""
        prompts = [self.prompt_ids(r) for r in requests]
        for i, p in enumerate(prompts):
            self.check_prompt(p, settings, where=f"prompt {i + 1}")
        out: list[Generation] = []
        step = max(settings.batch_size * 4, 1)
        with progress_bar(total=len(prompts), desc="generating", unit="prompt",
                          disable=not progress) as bar:
            for start in range(0, len(prompts), step):
                out.extend(self.generate_ids(prompts[start:start + step], settings))
                bar.update(min(step, len(prompts) - start))
        return out


def load_generator(model_path: Path, base: Path | None, chat: ChatConfig,
                   device: str | None = None) -> Generator:
    """A Generator for a causal-LM model directory (an adapter needs its ``base``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from landfall.inference.adapters import is_adapter_dir
    from landfall.inference.precision import settle_dtype
    from landfall.inference.torch_int8 import is_torch_int8, quantize_linear

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if is_adapter_dir(model_path):
        from peft import PeftModel

        if base is None:
            raise LandfallError(f"{model_path}: an adapter needs its base model")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                          model_path)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if is_torch_int8(model_path):
        model, dev = quantize_linear(model), torch.device("cpu")  # CPU-only kernels
    else:
        model = settle_dtype(model, dev)  # bf16 weights: bf16 where native, else fp32
    model.config.use_cache = True
    model.to(dev).eval()
    return Generator(model, tokenizer, chat, dev)
