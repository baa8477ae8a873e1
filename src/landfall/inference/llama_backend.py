"""The llama.cpp backend: a causal-LM run whose weights are a GGUF file, run by llama-cpp-python.

A GGUF run directory is a run like any other: ``landfall.toml`` (the run's config, chat and
generation settings), ``compression.json`` (what it was made from) and ``model/`` holding
``model.gguf`` beside the run's own tokenizer files and ``config.json``. The prompt is
formatted and tokenised by the same transformers tokenizer and chat template as the torch
backend, and the new tokens are decoded by it too, so that both backends see the very same
token ids and differ only in the arithmetic: llama.cpp takes token ids in and gives token ids
out. The GGUF still carries its own tokenizer and chat template (checked at load), so that the
file alone works in any llama.cpp tool.

Two decoders: ``LlamaModel`` (llama-cpp-python's ``Llama.generate``, one sequence per context:
``generate`` and ``evaluate``; consecutive prompts that share a prefix reuse its KV cache) and
``ParallelDecoder`` (llama.cpp's parallel sequences: many sequences in one batch per decoding
step, each with its own seq_id in one unified KV cache — what llama.cpp's own server does
with ``--parallel``; the service's engine, ``serving.generation_llama``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from landfall.errors import LandfallError
from landfall.tasks.causal_lm.chat import encode, prompt_text, stop_ids
from landfall.tasks.causal_lm.config import ChatConfig, GenerateConfig

GGUF_FILE = "model.gguf"
# what a GGUF must carry for llama.cpp tools to run it as a chat model
REQUIRED_KEYS = {"general.architecture": "its architecture",
                 "tokenizer.ggml.model": "its tokenizer",
                 "tokenizer.chat_template": "its chat template"}
INSTALL_HINT = ("pip install 'llama-cpp-python==0.3.36' (it compiles llama.cpp: minutes), "
                "or pip install 'landfall[bench]'")


def is_gguf_dir(path: str | Path) -> bool:
    return (Path(path) / GGUF_FILE).is_file()


def require_llama_cpp():
    """The ``llama_cpp`` module, or a refusal saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise LandfallError(f"this run's weights are GGUF (llama.cpp) and llama-cpp-python is "
                            f"not installed ({exc}): {INSTALL_HINT}") from None
    return llama_cpp


def gguf_metadata(path: str | Path) -> dict:
    """The GGUF file's key/value metadata that Landfall reads (strings and numbers), through
    the ``gguf`` package's reader (no llama.cpp needed)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise LandfallError("reading a GGUF needs the gguf package: pip install gguf") from None
    try:
        reader = GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise LandfallError(f"{path}: not a readable GGUF file ({exc})") from None
    out = {}
    for name, f in reader.fields.items():
        if not name.startswith(("general.", "tokenizer.ggml.model", "tokenizer.chat_template",
                                "tokenizer.ggml.eos", "tokenizer.ggml.bos")) \
                and not name.endswith(".context_length"):
            continue
        try:
            out[name] = f.contents()
        except Exception:  # noqa: BLE001 - a field this reader cannot decode  # nosec B112
            continue
    return out


def check_gguf_dir(path: str | Path) -> dict:
    """Refuse a GGUF model directory that lacks what generation needs (naming it): the GGUF's
    architecture, tokenizer and chat template, and the transformers tokenizer beside it.
    Returns the GGUF's metadata."""
    path = Path(path)
    meta = gguf_metadata(path / GGUF_FILE)
    missing = {key: what for key, what in REQUIRED_KEYS.items() if not meta.get(key)}
    if missing:
        raise LandfallError(f"{path / GGUF_FILE}: the GGUF lacks {' and '.join(missing.values())}"
                            f" (metadata {', '.join(missing)}); convert the run again with "
                            "`landfall compress`")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer.model").is_file():
        raise LandfallError(f"{path}: no tokenizer (tokenizer.json) beside {GGUF_FILE}")
    return meta


def _digest_seed(seed: int, prompt: Sequence[int]) -> int:
    digest = hashlib.sha256(repr((seed, list(prompt))).encode()).digest()
    return int.from_bytes(digest[:4], "little")


class LlamaModel:
    """One llama.cpp context over a GGUF file; ``tokens`` streams a sequence's new token ids.
    One sequence at a time: a lock serialises callers."""

    def __init__(self, gguf: Path, *, n_ctx: int, threads: int = 0, n_batch: int = 512) -> None:
        llama_cpp = require_llama_cpp()
        threads = threads or os.cpu_count() or 1
        self.llama = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads,
                                     n_threads_batch=threads, n_batch=n_batch, verbose=False)
        self.lock = threading.Lock()
        self.threads = threads

    def tokens(self, prompt: Sequence[int], *, max_new_tokens: int, greedy: bool = True,
               temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
               repetition_penalty: float = 1.0, seed: int = 0,
               stop: Callable[[], bool] | None = None, eos: set[int] | None = None
               ) -> Iterator[int]:
        """New token ids after ``prompt`` until an ``eos`` id (yielded), ``max_new_tokens``,
        or ``stop()`` turning true (checked before each token). Greedy is llama.cpp's argmax
        sampler; otherwise temperature, top-k (0 = none) and top-p, seeded per prompt."""
        with self.lock:
            if not greedy:
                self.llama.set_seed(_digest_seed(seed, prompt))
            gen = self.llama.generate(
                list(prompt), temp=0.0 if greedy else float(temperature),
                top_k=0 if greedy else int(top_k), top_p=1.0 if greedy else float(top_p),
                min_p=0.0, typical_p=1.0, repeat_penalty=float(repetition_penalty), reset=True)
            n = 0
            try:
                for tok in gen:
                    if stop is not None and stop():
                        return
                    yield int(tok)
                    n += 1
                    if n >= max_new_tokens or (eos and tok in eos):
                        return
            finally:
                gen.close()


class ParallelDecoder:
    """One llama.cpp context decoding up to ``n_seq`` sequences together: ``step`` takes each
    sequence's next tokens (a prompt chunk, or the last generated token) and returns the
    logits after each sequence's last one. Written on llama-cpp-python's low-level API
    because its ``Llama`` class decodes one sequence per context (no batching across
    requests); this is the loop of llama.cpp's ``examples/parallel`` and of its server."""

    def __init__(self, gguf: Path, *, n_seq: int, n_ctx: int, threads: int = 0,
                 n_batch: int = 512) -> None:
        llama_cpp = require_llama_cpp()
        from llama_cpp import _internals

        # llama-cpp-python prints every llama.cpp log line (debug included) until a Llama()
        # sets its logger's level; this decoder builds the context itself, so quiet it here
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self.lib = llama_cpp
        self.threads = threads or os.cpu_count() or 1
        self.n_seq, self.n_ctx, self.n_batch = n_seq, n_ctx, n_batch
        self.model = _internals.LlamaModel(path_model=str(gguf),
                                           params=llama_cpp.llama_model_default_params(),
                                           verbose=False)
        p = llama_cpp.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = n_ctx, n_batch, n_batch, n_seq
        p.kv_unified = True  # the sequences share the cache: a long one may use what is free
        # no flash attention: on CPU its kernel is the slower one once the context grows
        # (measured on 2 Xeon cores, Q8_0 SmolLM2-135M, a token after a 400-token prompt:
        # 19.5-22.2 ms with it, 13.7-14.5 without; the same 14.4 ms after 80 tokens)
        p.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        p.n_threads = p.n_threads_batch = self.threads
        self.ctx = _internals.LlamaContext(model=self.model, params=p, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1,
                                           verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        self.n_vocab = self.model.n_vocab()

    def step(self, parts: Sequence[tuple[int, Sequence[int], int]]) -> dict:
        """``parts``: (seq_id, tokens, position of the first) with at most ``n_batch`` tokens
        in all -> {seq_id: the logits after its last token (a copy)}."""
        import numpy as np

        b = self.batch.batch
        n, last = 0, {}
        for seq, tokens, pos in parts:
            for k, tok in enumerate(tokens):
                b.token[n], b.pos[n], b.n_seq_id[n], b.logits[n] = tok, pos + k, 1, False
                b.seq_id[n][0] = seq
                n += 1
            b.logits[n - 1] = True
            last[seq] = n - 1
        b.n_tokens = n
        rc = self.lib.llama_decode(self.ctx.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} (1: no room in the KV cache)")
        return {seq: np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ctx.ctx, i),
                                           shape=(self.n_vocab,)).copy()
                for seq, i in last.items()}

    def free(self, seq: int) -> None:
        """Forget a sequence's KV cache (its seq_id is then free for another)."""
        self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)


def pick_token(logits, *, greedy: bool, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, rng=None) -> int:
    """Greedy: the argmax (llama.cpp's greedy sampler does the same); otherwise temperature,
    then top-k (0 = none), then top-p, sampled with ``rng`` (numpy Generator)."""
    import numpy as np

    if greedy:
        return int(np.argmax(logits))
    x = logits.astype(np.float64) / max(temperature, 1e-5)
    order = np.argsort(-x)
    if top_k:
        order = order[:top_k]
    p = np.exp(x[order] - x[order[0]])
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(order), p=p)])


class LlamaGenerator:
    """The Generator of a GGUF run: the same prompts, checks and results as
    ``inference.generator.Generator``, decoded by llama.cpp one prompt at a time."""

    def __init__(self, path: Path, chat: ChatConfig, threads: int = 0, n_ctx: int = 0) -> None:
        from transformers import AutoTokenizer

        meta = check_gguf_dir(path)
        self.path, self.chat = path, chat
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_ids = stop_ids(self.tokenizer)
        arch = meta.get("general.architecture", "")
        self.context = int(meta.get(f"{arch}.context_length") or 0)
        self.config = json.loads((path / "config.json").read_text(encoding="utf-8")) \
            if (path / "config.json").is_file() else {}
        n_ctx = n_ctx or min(self.context or 4096, 4096)
        self.n_ctx, self.threads = n_ctx, threads
        self.context = min(self.context, n_ctx) if self.context else n_ctx
        self._model: LlamaModel | None = None

    @property
    def model(self) -> LlamaModel:
        """The one-sequence llama.cpp context, loaded when first used (the service decodes
        with a ``ParallelDecoder`` instead)."""
        if self._model is None:
            self._model = LlamaModel(self.path / GGUF_FILE, n_ctx=self.n_ctx,
                                     threads=self.threads)
        return self._model

    def prompt_ids(self, request: str | Sequence[dict]) -> list[int]:
        return encode(self.tokenizer, prompt_text(self.tokenizer, request,
                                                  self.chat.system_prompt))

    def check_prompt(self, ids: list[int], settings, where: str = "prompt",
                     new_field: str = "generate.max_new_tokens") -> None:
        from landfall.inference.generator import check_prompt

        check_prompt(ids, settings, self.chat, self.context, where, new_field)

    def generate_ids(self, prompts: Sequence[list[int]], settings: GenerateConfig) -> list:
        from landfall.inference.generator import Generation, _cut, stop_strings

        stops = stop_strings(settings)
        eos = set(self.stop_ids)
        out = []
        for p in prompts:
            new = list(self.model.tokens(
                p, max_new_tokens=settings.max_new_tokens, greedy=not settings.do_sample,
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                repetition_penalty=settings.repetition_penalty, seed=settings.seed, eos=eos))
            ended = next((j for j, t in enumerate(new) if t in eos), None)
            if ended is not None:
                new = new[:ended]
            text, cut = _cut(self.tokenizer.decode(new, skip_special_tokens=True), stops)
            out.append(Generation(text.strip(), len(p), len(new),
                                  "stop" if ended is not None or cut else "length"))
        return out

    def generate(self, requests, settings: GenerateConfig, progress: bool = False) -> list:
        from landfall.utils.progress import progress_bar

        prompts = [self.prompt_ids(r) for r in requests]
        for i, p in enumerate(prompts):
            self.check_prompt(p, settings, where=f"prompt {i + 1}")
        out = []
        with progress_bar(total=len(prompts), desc="generating (llama.cpp)", unit="prompt",
                          disable=not progress) as bar:
            for p in prompts:
                out.extend(self.generate_ids([p], settings))
                bar.update(1)
        return out

    def log_likelihood(self, *args, **kwargs):
        raise LandfallError(f"{self.path}: log-likelihoods (the audit's stereotype tests) need "
                            "the torch backend; audit the run the GGUF was made from")


def load_llama_generator(path: Path, chat: ChatConfig, threads: int = 0) -> LlamaGenerator:
    require_llama_cpp()
    return LlamaGenerator(path, chat, threads=threads)
