"""Tokenise once, cache the token ids as safetensors, reuse them on every later run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from landfall.hub import cache_dir
from landfall.runs import atomic_path
from landfall.utils.progress import progress_bar


def _raw_backend(tokenizer):
    """The Rust tokenizer with the truncation/padding that tokenizer.json may carry switched off
    (MiniLM's truncates to 128 and pads to 128: documents must reach the windowing intact)."""
    bt = tokenizer.backend_tokenizer
    if bt.truncation is not None:
        bt.no_truncation()
    if bt.padding is not None:
        bt.no_padding()
    return bt


def _key(texts: Sequence[str], tokenizer) -> str:
    h = hashlib.sha256()
    if tokenizer.is_fast:
        vocab = _raw_backend(tokenizer).to_str()
    else:
        vocab = str(tokenizer.get_vocab())
    h.update(hashlib.sha256(vocab.encode()).digest())
    h.update(json.dumps([len(texts)]).encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def _encode(texts: Sequence[str], tokenizer, desc: str, chunk: int = 512) -> list[list[int]]:
    out: list[list[int]] = []
    with progress_bar(total=len(texts), desc=desc, disable=len(texts) < 2000) as bar:
        for i in range(0, len(texts), chunk):
            part = list(texts[i : i + chunk])
            if tokenizer.is_fast:  # the Rust tokenizer directly: parallel and without warnings
                enc = _raw_backend(tokenizer).encode_batch(part, add_special_tokens=False)
                out.extend(e.ids for e in enc)
            else:
                out.extend(tokenizer(part, add_special_tokens=False)["input_ids"])
            bar.update(len(part))
    return out


def tokenize(
    texts: Sequence[str], tokenizer, *, cache: bool = True, desc: str = "tokenising"
) -> list[list[int]]:
    """Token ids (no special tokens, no truncation) of every text, from the cache if present."""
    if not cache:
        return _encode(texts, tokenizer, desc)
    path = cache_dir() / "tokens" / f"{_key(texts, tokenizer)}.safetensors"
    if path.exists():
        try:
            data = load_file(str(path))
            flat, offsets = data["ids"], data["offsets"]
            return [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
        except Exception:  # a damaged cache entry is rebuilt below  # nosec B110
            pass
    docs = _encode(texts, tokenizer, desc)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(d) for d in docs])
    flat = np.fromiter((t for d in docs for t in d), dtype=np.int32, count=int(offsets[-1]))
    try:
        with atomic_path(path) as tmp:
            save_file({"ids": flat, "offsets": offsets}, str(tmp))
    except OSError:
        pass  # a read-only cache only costs speed
    return docs
