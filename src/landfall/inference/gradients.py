"""The gradients head: how each input token moves a prediction, for attributions and audits.

``input_gradients`` returns, for one text, the gradient of a class's logit with respect to
the input embeddings (and the embeddings themselves, so that callers can form
gradient x input or integrated gradients). It works on any torch classifier run (plain or
adapter), through the model's own input-embedding layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from landfall.errors import LandfallError


@dataclass
class TokenGradients:
    tokens: list[str]
    embeddings: np.ndarray  # (n_tokens, hidden)
    gradients: np.ndarray  # (n_tokens, hidden): d logit[target] / d embedding
    target: int
    logits: np.ndarray  # (n_labels,)

    @property
    def saliency(self) -> np.ndarray:
        """Gradient x input, summed over the hidden size: one signed score per token."""
        return (self.gradients * self.embeddings).sum(axis=1)


def input_gradients(predictor, text: str, target: int | None = None) -> TokenGradients:
    """Gradients for the first window of ``text`` (the window the classifier reads first)."""
    model = predictor.model
    if not isinstance(model, torch.nn.Module):
        raise LandfallError("gradients need a PyTorch run (not ONNX Runtime)")
    from landfall.data.tokens import tokenize

    ids = predictor.add_special(tokenize([text], predictor.tokenizer, cache=False)[0]
                                [: predictor.spec.max_length - predictor.spec.specials])
    input_ids = torch.tensor([ids], device=predictor.device)
    was_training = model.training
    model.eval()
    try:
        embeds = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds,
                       attention_mask=torch.ones_like(input_ids)).logits[0]
        cls = int(logits.argmax()) if target is None else int(target)
        logits[cls].backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return TokenGradients(predictor.tokenizer.convert_ids_to_tokens(ids),
                          embeds[0].detach().cpu().numpy(), embeds.grad[0].cpu().numpy(),
                          cls, logits.detach().cpu().numpy())
