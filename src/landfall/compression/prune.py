"""Structured pruning: remove whole attention heads and feed-forward neurons.

Importance is the first-order estimate of Michel et al. (2019), "Are Sixteen Heads Really
Better than One?": put a gate (all ones) on every head's output and every FFN neuron, run the
loss backward over sample batches, and score each unit by the accumulated |dL/dgate| — the
loss change its removal would cause, to first order. Units are ranked within their layer and
the same share is removed from every layer (at least one head stays).

Pruned units are cut out of the weight matrices, so the saved model is smaller and faster on
dense hardware — unlike unstructured (magnitude) pruning, which only zeroes weights.

Why by hand: transformers 5 dropped ``prune_heads``, and neither it nor peft /
``torch.nn.utils.prune`` removes heads and neurons physically (the surgery and the loader of
the result are in ``landfall.inference.pruned``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from landfall.errors import LandfallError
from landfall.inference.pruned import (
    encoder_layers,
    head_dim,
    prune_ffn,
    prune_heads,
    record_shapes,
)


def importance(model, batches, device="cpu") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Accumulated |dL/dgate| per head (layers x heads) and per FFN neuron (one tensor per
    layer), over ``batches`` of (inputs dict, labels)."""
    layers = encoder_layers(model)
    gates_h = [torch.ones(ly.attention.self.num_attention_heads, device=device,
                          requires_grad=True) for ly in layers]
    gates_f = [torch.ones(ly.intermediate.dense.out_features, device=device,
                          requires_grad=True) for ly in layers]
    hooks = []
    for ly, gh, gf in zip(layers, gates_h, gates_f, strict=True):
        d = head_dim(ly)

        def head_hook(_m, _inp, out, gh=gh, d=d):
            ctx = out[0]
            shp = ctx.shape
            ctx = (ctx.view(*shp[:-1], -1, d) * gh[:, None]).view(shp)
            return (ctx, *out[1:])

        def ffn_hook(_m, _inp, out, gf=gf):
            return out * gf

        hooks.append(ly.attention.self.register_forward_hook(head_hook))
        hooks.append(ly.intermediate.register_forward_hook(ffn_hook))
    was_training = model.training
    model.eval()  # no dropout: the scores measure the model as it will run
    acc_h = [torch.zeros_like(g) for g in gates_h]
    acc_f = [torch.zeros_like(g) for g in gates_f]
    try:
        for inputs, labels in batches:
            inputs = {k: v.to(device) for k, v in inputs.items()}
            logits = model(**inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels.to(device))
            grads = torch.autograd.grad(loss, gates_h + gates_f)
            for a, g in zip(acc_h + acc_f, grads, strict=True):
                a += g.abs()
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return torch.stack(acc_h), acc_f


def plan(head_scores: torch.Tensor, ffn_scores: list[torch.Tensor], heads: float,
         ffn: float) -> tuple[list[list[int]], list[list[int]]]:
    """Which heads / neurons each layer keeps when ``heads`` / ``ffn`` of them are removed."""
    if not (0 <= heads < 1 and 0 <= ffn < 1):
        raise LandfallError(f"prune shares must be in [0, 1): heads={heads}, ffn={ffn}")
    keep_h, keep_f = [], []
    for row in head_scores:
        k = max(1, round(len(row) * (1 - heads)))
        keep_h.append(sorted(row.topk(k).indices.tolist()))
    for row in ffn_scores:
        k = max(1, round(len(row) * (1 - ffn)))
        keep_f.append(sorted(row.topk(k).indices.tolist()))
    return keep_h, keep_f


def apply(model, keep_heads: list[list[int]], keep_ffn: list[list[int]]) -> None:
    for ly, kh, kf in zip(encoder_layers(model), keep_heads, keep_ffn, strict=True):
        if len(kh) < ly.attention.self.num_attention_heads:
            prune_heads(ly, kh)
        if len(kf) < ly.intermediate.dense.out_features:
            prune_ffn(ly, kf)
    record_shapes(model)


def _sample_batches(windows, y, n_batches: int, batch_size: int, pad_id: int, seed: int):
    """A seeded sample of training windows, batched by length."""
    import random

    from landfall.data.batching import collate, inference_batches

    rng = random.Random(seed)  # seeded sampling, not security  # nosec B311
    pick = rng.sample(range(len(windows)), min(len(windows), n_batches * batch_size))
    for idx in inference_batches([len(windows[i]) for i in pick], batch_size):
        chosen = [pick[i] for i in idx]
        yield collate([windows[i] for i in chosen], pad_id), torch.as_tensor(
            [y[i] for i in chosen])


def prune_run(run_dir: str | Path, output: str | Path, overrides: list[str] | None = None
              ) -> dict:
    """Score heads and neurons of a trained run on its training data, cut the least
    important (``prune.*`` of the config), fine-tune briefly to recover, and write a run
    directory at ``output``; returns its evaluation."""
    import dataclasses

    from landfall import runs
    from landfall.compression.retrain import begin, fit_and_report
    from landfall.data.prepare import prepare
    from landfall.data.windows import make_windows
    from landfall.inference.loading import load_run, run_config
    from landfall.tasks.classification.objective import Classification
    from landfall.utils.progress import progress_bar

    cfg = run_config(run_dir, ["report.baseline=false", *(overrides or [])])
    predictor = load_run(run_dir, device="cpu")
    model = predictor.model
    if not isinstance(model, torch.nn.Module) or hasattr(model, "peft_config"):
        raise LandfallError(f"{run_dir}: pruning needs a plain PyTorch run "
                            "(export-merged a LoRA run first; ONNX runs cannot be pruned)")
    data = prepare(cfg.data, predictor.tokenizer, cfg.train.seed)
    windows, owner = make_windows(data.train.docs, predictor.spec, predictor.add_special)
    y = [data.train.y[d] for d in owner]
    p = cfg.prune
    batches = _sample_batches(windows, y, p.importance_batches, cfg.train.batch_size,
                              predictor.pad_id, cfg.train.seed)
    with progress_bar(total=p.importance_batches, desc="scoring heads and neurons") as bar:
        def counted():
            for b in batches:
                yield b
                bar.update(1)

        head_scores, ffn_scores = importance(model, counted())
    before = sum(t.numel() for t in model.parameters())
    keep_h, keep_f = plan(head_scores, ffn_scores, p.heads, p.ffn)
    apply(model, keep_h, keep_f)
    after = sum(t.numel() for t in model.parameters())
    steps = p.recovery_steps
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, max_steps=steps, eval_every=max(steps, 1), patience=0))
    out_dir = begin(cfg, output)
    n_heads = head_scores.shape[1]
    runs.write_json(out_dir / "pruning.json", {
        "source": str(run_dir), "method": "structured (Michel et al. 2019 gradient importance)",
        "heads_removed": {str(i): sorted(set(range(n_heads)) - set(k))
                          for i, k in enumerate(keep_h)},
        "ffn_kept": [len(k) for k in keep_f], "params_before": before, "params_after": after,
        "recovery_steps": steps})

    def objective(pred):
        return Classification(windows, y, data.validation.docs, data.validation.y, pred,
                              cfg.train.metric)

    return fit_and_report(cfg, out_dir, model, predictor.tokenizer, data, objective,
                          {"pruned_from": str(run_dir), "params_before": before},
                          train=steps > 0)
