"""Models with whole heads and FFN neurons cut out (``landfall.compression.prune``): the surgery
and the loader.

A model with heads removed no longer fits BertConfig (head width is hidden_size /
num_attention_heads, and transformers 5 dropped ``pruned_heads``), so ``config.json`` records
the per-layer shapes under ``landfall_pruning`` and ``load_pruned`` rebuilds them before it
loads the safetensors weights. With every head kept and one FFN width for all layers, no key
is written and plain ``from_pretrained`` loads the model as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from landfall.errors import LandfallError

KEY = "landfall_pruning"


def encoder_layers(model) -> list:
    encoder = getattr(model.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None or not hasattr(layers[0].attention, "self") or \
            not hasattr(layers[0].attention.self, "query"):
        raise LandfallError(f"structured pruning supports BERT-style encoders (bert, roberta); "
                            f"got model_type={model.config.model_type!r}")
    return list(layers)


def _slice_linear(lin: torch.nn.Linear, keep: torch.Tensor, dim: int) -> torch.nn.Linear:
    """A new Linear holding only the rows (dim 0: outputs) or columns (dim 1: inputs) ``keep``."""
    w = lin.weight.detach().index_select(dim, keep).clone()
    out_f, in_f = w.shape
    new = torch.nn.Linear(in_f, out_f, bias=lin.bias is not None).to(w.device, w.dtype)
    new.weight.data.copy_(w)
    if lin.bias is not None:
        b = lin.bias.detach()
        new.bias.data.copy_(b.index_select(0, keep) if dim == 0 else b)
    return new


def head_dim(layer) -> int:
    return layer.attention.self.attention_head_size


def prune_heads(layer, keep: Sequence[int]) -> None:
    """Keep only the heads ``keep`` of one encoder layer."""
    att = layer.attention.self
    d = head_dim(layer)
    idx = torch.cat([torch.arange(h * d, (h + 1) * d) for h in sorted(keep)])
    idx = idx.to(att.query.weight.device)
    for name in ("query", "key", "value"):
        setattr(att, name, _slice_linear(getattr(att, name), idx, 0))
    layer.attention.output.dense = _slice_linear(layer.attention.output.dense, idx, 1)
    att.num_attention_heads = len(keep)
    att.all_head_size = len(keep) * d


def prune_ffn(layer, keep: Sequence[int]) -> None:
    """Keep only the feed-forward neurons ``keep`` of one encoder layer."""
    idx = torch.as_tensor(sorted(keep), device=layer.intermediate.dense.weight.device)
    layer.intermediate.dense = _slice_linear(layer.intermediate.dense, idx, 0)
    layer.output.dense = _slice_linear(layer.output.dense, idx, 1)


def shapes(model) -> dict:
    layers = encoder_layers(model)
    return {"heads": [ly.attention.self.num_attention_heads for ly in layers],
            "intermediate": [ly.intermediate.dense.out_features for ly in layers]}


def record_shapes(model) -> None:
    """Write the per-layer shapes into the config (or drop the key when plain loading works)."""
    s = shapes(model)
    full_heads = all(h == model.config.num_attention_heads for h in s["heads"])
    if full_heads and len(set(s["intermediate"])) == 1:
        model.config.intermediate_size = s["intermediate"][0]
        if hasattr(model.config, KEY):
            delattr(model.config, KEY)
    else:
        setattr(model.config, KEY, s)


def is_pruned_dir(path: str | Path) -> bool:
    import json

    cfg = Path(path) / "config.json"
    return cfg.exists() and KEY in json.loads(cfg.read_text())


def load_pruned(path: str | Path):
    """Rebuild a model saved with per-layer pruned shapes and load its safetensors weights."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = Path(path)
    config = AutoConfig.from_pretrained(path)
    s = getattr(config, KEY)
    model = AutoModelForSequenceClassification.from_config(config)
    for ly, h, f in zip(encoder_layers(model), s["heads"], s["intermediate"], strict=True):
        if h < ly.attention.self.num_attention_heads:
            prune_heads(ly, list(range(h)))
        if f < ly.intermediate.dense.out_features:
            prune_ffn(ly, list(range(f)))
    state = {}
    for f in sorted(path.glob("*.safetensors")):
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    tied = {k for k in missing if "decoder" in k}  # tied weights are saved once
    if set(missing) - tied or unexpected:
        raise LandfallError(f"{path}: weights do not fit the pruned shapes "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()
