"""Token attributions of a classifier prediction with Captum's LayerIntegratedGradients on the
input embeddings, the convergence delta Captum reports, an HTML heat map and a PNG, and a
faithfulness check (deleting the top-k attributed tokens must move the prediction more than
deleting k random ones).
"""

from __future__ import annotations

import html
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landfall.errors import LandfallError


@dataclass
class Attribution:
    tokens: list[str]  # the window read, special tokens included
    ids: list[int]
    scores: np.ndarray  # one signed score per token (summed over the hidden size)
    target: int  # the class explained
    label: str
    prob: float  # the model's probability of that class
    delta: float  # Captum's convergence delta: sum(scores) - (f(x) - f(baseline))
    special: np.ndarray  # True for [CLS], [SEP], ... (never deleted)

    def top(self, k: int) -> list[int]:
        """Positions of the k tokens that push most towards the class."""
        order = [i for i in np.argsort(-self.scores) if not self.special[i]]
        return order[:k]

    def to_json(self) -> dict:
        return {"label": self.label, "prob": self.prob, "delta": self.delta,
                "tokens": self.tokens, "scores": [float(s) for s in self.scores]}


def _model(predictor) -> torch.nn.Module:
    model = predictor.model
    if not isinstance(model, torch.nn.Module):
        raise LandfallError("explanations need a PyTorch run (not ONNX Runtime): explain the "
                            "run the ONNX model was exported from")
    if next(model.parameters()).dtype != torch.float32:
        model.float()  # integrated gradients need fp32: bf16 sums drift far from f(x)-f(0)
    return model.eval()


def _window(predictor, text: str) -> list[int]:
    from landfall.data.tokens import tokenize
    from landfall.data.windows import make_windows

    doc = tokenize([text], predictor.tokenizer, cache=False)[0]
    windows, _ = make_windows([doc], predictor.spec, predictor.add_special)
    return windows[0]  # the first window (the only one unless the run slides)


def _probs(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)


def attribute(predictor, text: str, target: int | None = None, steps: int = 32) -> Attribution:
    """Integrated gradients of the class probability from an all-[PAD] baseline (special
    tokens kept), through the model's input-embedding layer."""
    from captum.attr import LayerIntegratedGradients

    model = _model(predictor)
    ids = _window(predictor, text)
    dev = predictor.device
    x = torch.tensor([ids], device=dev)
    mask = torch.ones_like(x)
    specials = set(predictor.tokenizer.all_special_ids)
    special = np.array([i in specials for i in ids])
    base = torch.tensor([[i if s else predictor.pad_id for i, s in zip(ids, special,
                                                                         strict=True)]],
                        device=dev)
    with torch.no_grad():
        p = _probs(model, x, mask)[0]
    cls = int(p.argmax()) if target is None else int(target)

    def forward(input_ids, attention_mask):
        return _probs(model, input_ids, attention_mask)[:, cls]

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attr, delta = lig.attribute(x, baselines=base, additional_forward_args=(mask,),
                                n_steps=steps, internal_batch_size=16,
                                return_convergence_delta=True)
    scores = attr.sum(-1)[0].detach().cpu().numpy()
    return Attribution(predictor.tokenizer.convert_ids_to_tokens(ids), ids, scores, cls,
                       predictor.labels[cls], float(p[cls]), float(delta.abs().item()), special)


def _colour(score: float, scale: float) -> str:
    a = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
    return f"rgba(214,39,40,{a:.2f})" if score > 0 else f"rgba(31,119,180,{a:.2f})"


def heatmap_html(attrs: Sequence[Attribution], title: str = "Token attributions") -> str:
    """A page with one row of coloured tokens per explanation (red: towards the class)."""
    rows = []
    for a in attrs:
        scale = float(np.abs(a.scores).max()) or 1.0
        spans = " ".join(
            f'<span title="{s:+.4f}" style="background:{_colour(s, scale)};padding:1px 2px;'
            f'border-radius:3px">{html.escape(t)}</span>'
            for t, s in zip(a.tokens, a.scores, strict=True))
        rows.append(f"<p><b>{html.escape(a.label)}</b> p={a.prob:.3f} · convergence delta "
                    f"{a.delta:.2e}</p><p style='line-height:1.9'>{spans}</p>")
    return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<body style='font-family:sans-serif;max-width:60em'><h2>{html.escape(title)}</h2>"
            "<p>Red pushes towards the predicted class, blue away from it (integrated "
            "gradients, LayerIntegratedGradients on the input embeddings).</p>"
            + "\n".join(rows) + "</body>")


def heatmap_png(a: Attribution, path: str | Path, per_line: int = 14) -> Path:
    """The tokens as a wrapped grid of coloured boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landfall.runs import atomic_path

    n = len(a.tokens)
    lines = (n + per_line - 1) // per_line
    scale = float(np.abs(a.scores).max()) or 1.0
    fig, ax = plt.subplots(figsize=(per_line * 0.9, 0.45 * lines + 0.8))
    cmap = plt.get_cmap("RdBu_r")
    for i, (t, s) in enumerate(zip(a.tokens, a.scores, strict=True)):
        r, c = divmod(i, per_line)
        ax.text(c + 0.5, lines - r - 0.5, t, ha="center", va="center", fontsize=8,
                bbox={"facecolor": cmap(0.5 + 0.5 * s / scale), "edgecolor": "none",
                      "boxstyle": "round,pad=0.25"})
    ax.set_xlim(0, per_line)
    ax.set_ylim(0, lines)
    ax.axis("off")
    ax.set_title(f"{a.label} (p={a.prob:.3f}), convergence delta {a.delta:.1e}", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _without(predictor, ids: list[int], drop: Sequence[int], target: int) -> float:
    keep = [t for i, t in enumerate(ids) if i not in set(drop)]
    x = torch.tensor([keep], device=predictor.device)
    with torch.no_grad():
        return float(_probs(predictor.model, x, torch.ones_like(x))[0, target])


def faithfulness(predictor, texts: Sequence[str], k: int = 3, steps: int = 32,
                 seed: int = 0, progress: bool = False) -> dict:
    """Mean drop of the predicted class's probability when the top-k attributed tokens are
    deleted, against k random (non-special) tokens, over ``texts``."""
    from landfall.utils.progress import progress_bar

    rng = random.Random(seed)  # seeded, not security  # nosec B311
    top, rand, deltas = [], [], []
    with progress_bar(total=len(texts), desc="attributing", disable=not progress) as bar:
        for text in texts:
            a = attribute(predictor, text, steps=steps)
            words = [i for i in range(len(a.ids)) if not a.special[i]]
            if len(words) <= k:
                bar.update(1)
                continue
            top.append(a.prob - _without(predictor, a.ids, a.top(k), a.target))
            rand.append(a.prob - _without(predictor, a.ids, rng.sample(words, k), a.target))
            deltas.append(a.delta)
            bar.update(1)
    if not top:
        raise LandfallError(f"faithfulness: every text is {k} tokens or shorter")
    top_a, rand_a = np.asarray(top), np.asarray(rand)
    return {"texts": len(top), "k": k, "top_k_drop": float(top_a.mean()),
            "random_k_drop": float(rand_a.mean()),
            "top_beats_random": float((top_a > rand_a).mean()),
            "mean_convergence_delta": float(np.mean(deltas))}
