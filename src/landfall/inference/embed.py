"""The embedding head: mean-pooled, L2-normalised sentence vectors from an encoder
(all-MiniLM-L6-v2's own recipe), for similarity scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from landfall.data.batching import inference_batches


class Embedder:
    def __init__(self, name: str = "minilm", max_length: int = 256, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        from landfall.hub import resolve_model

        path = resolve_model(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.max_length = max_length
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        lengths = [len(t) for t in texts]
        for idx in inference_batches(lengths, self.batch_size):
            enc = self.tokenizer([texts[i] or " " for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out
