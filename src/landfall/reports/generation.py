"""Evaluate a causal-LM run: its responses against the references, beside the honest
baselines (retrieval of a training response; the base model zero- and few-shot), all on the
same requests; writes eval.json, generations.jsonl, report.md and plots/."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from landfall import runs
from landfall.config import Config
from landfall.tasks.causal_lm.data import ChatData, Record, read_records, split_records
from landfall.tasks.causal_lm.metrics import (
    cosine,
    length_stats,
    paired_bootstrap,
    score_generations,
)
from landfall.utils.progress import log

FINE_TUNED = "fine-tuned"


def _sample(records: list[Record], limit: int, seed: int) -> list[Record]:
    if limit and limit < len(records):
        return split_records(records, limit / len(records), seed)[1]
    return records


def _few_shot(train: list[Record], requests: list[str], k: int) -> list[list[dict]]:
    """Chat messages with the ``k`` training pairs nearest to each request as demonstrations."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    pool = vec.fit_transform([r.request for r in train])
    sims = (vec.transform(requests) @ pool.T).toarray()
    out = []
    for row, request in zip(sims, requests, strict=True):
        turns = []
        for i in np.argsort(-row)[:k][::-1]:  # the nearest last, just before the request
            turns += [{"role": "user", "content": train[i].request},
                      {"role": "assistant", "content": train[i].response}]
        out.append([*turns, {"role": "user", "content": request}])
    return out


def _systems(run_dir: Path, cfg: Config, train: list[Record], requests: list[str],
             baselines: bool) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Responses of each system to ``requests``, and the seconds each took."""
    from landfall.hub import resolve_model
    from landfall.inference.generator import load_generator
    from landfall.inference.loading import load_generation_run

    out: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    settings = cfg.generate

    def timed(name, fn):
        log(f"generating: {name} ({len(requests)} requests)")
        t0 = time.perf_counter()
        out[name] = fn()
        seconds[name] = time.perf_counter() - t0

    tuned = load_generation_run(run_dir)
    timed(FINE_TUNED, lambda: [g.text for g in tuned.generate(requests, settings, progress=True)])
    tuned = None  # free it before the base model loads
    if not baselines:
        return out, seconds
    from landfall.baseline.retrieval import nearest_responses

    timed("retrieval (TF-IDF nearest request)", lambda: nearest_responses(
        [r.request for r in train], [r.response for r in train], requests)[0])
    chat = dataclasses.replace(cfg.chat, max_prompt_tokens=4096)
    base = load_generator(resolve_model(cfg.model.name), None, chat)
    timed("base model zero-shot",
          lambda: [g.text for g in base.generate(requests, settings, progress=True)])
    if cfg.report.few_shot:
        shots = _few_shot(train, requests, cfg.report.few_shot)
        timed(f"base model {cfg.report.few_shot}-shot",
              lambda: [g.text for g in base.generate(shots, settings, progress=True)])
    return out, seconds


def score_systems(systems: dict[str, list[str]], records: list[Record]) -> dict[str, dict]:
    from landfall.inference.embed import Embedder

    refs = [r.response for r in records]
    embedder = Embedder("minilm")
    ref_vecs = embedder.embed(refs)
    scores = {}
    for name, preds in systems.items():
        sim = cosine(embedder.embed(preds), ref_vecs)
        scores[name] = score_generations(preds, refs, [r.category for r in records],
                                         [r.entity for r in records], sim)
    scores["reference"] = {"length_words": length_stats(refs)}
    return scores


def _evaluate(run_dir: Path, out_dir: Path, cfg: Config, train: list[Record],
              records: list[Record], baselines: bool, extra: dict) -> dict:
    requests = [r.request for r in records]
    systems, seconds = _systems(run_dir, cfg, train, requests, baselines)
    scores = score_systems(systems, records)
    runs.write_text(out_dir / "generations.jsonl", "".join(
        runs.json_line({"line": r.line, "request": r.request, "reference": r.response,
                        "category": r.category,
                        **{name: systems[name][i] for name in systems}})
        for i, r in enumerate(records)))
    summary = {name: {k: s[k] for k in ("rouge1", "rouge2", "rougeL", "similarity",
                                        "entity_carried", "n")} | {
        "length_words": s["length_words"], "seconds": seconds.get(name)}
        for name, s in scores.items() if name != "reference"}
    ours = scores[FINE_TUNED]["per_example"]["rougeL"]
    for name in summary:
        if name != FINE_TUNED:  # the fine-tuned model's ROUGE-L lead, paired, with its noise
            summary[name]["rougeL_lead_of_fine_tuned"] = paired_bootstrap(
                ours, scores[name]["per_example"]["rougeL"])
    result = {"validation": {**summary[FINE_TUNED], "systems": summary,
                             "per_category": scores[FINE_TUNED]["per_category"],
                             "reference_length_words": scores["reference"]["length_words"]},
              "settings": dataclasses.asdict(cfg.generate), **extra}
    runs.write_json(out_dir / runs.EVAL, result)
    plots = {}
    if cfg.report.plots:
        from landfall.reports.generation_plots import plot_generation

        plots = plot_generation(out_dir / runs.PLOTS, scores, records, systems,
                                runs.read_jsonl(run_dir / runs.METRICS))
    from landfall.tasks.causal_lm.report import write_generation_report

    write_generation_report(out_dir, f"Landfall generation run: {run_dir.name}", result, plots)
    return result


def evaluate_generation_run(run_dir: Path, cfg: Config, data: ChatData, summary: dict) -> dict:
    """Training's last step for a causal-LM run: score the best model on validation."""
    records = _sample(data.validation, cfg.report.generation_limit,
                      cfg.data.split_seed_for(cfg.train.seed))
    extra = {"train": {k: v for k, v in summary.items() if k not in ("data",)},
             "data": {**summary.get("data", {}), "n_scored": len(records)},
             "validation_loss": summary.get("validation_loss")}
    return _evaluate(run_dir, run_dir, cfg, data.train, records, cfg.report.baseline, extra)


def evaluate_generation(run_dir: str | Path, data: str | Path, output: str | Path | None = None,
                        *, limit: int | None = None, baselines: bool = True) -> dict:
    """``landfall evaluate`` on a causal-LM run: score it (and the baselines, built from the
    run's own training split) on the requests and responses of ``data``."""
    from landfall.inference.loading import run_config, run_task
    from landfall.tasks.causal_lm.data import prepare_chat

    run_dir = Path(run_dir)
    run_task(run_dir).require("evaluate", str(run_dir))
    cfg = run_config(run_dir)
    records = read_records(str(data), cfg.chat)
    n = cfg.report.generation_limit if limit is None else limit
    records = _sample(records, n, cfg.data.split_seed_for(cfg.train.seed))
    train: list[Record] = []
    if baselines:
        from transformers import AutoTokenizer

        from landfall.inference.loading import model_dir

        train = prepare_chat(cfg, AutoTokenizer.from_pretrained(model_dir(run_dir))).train
    out_dir = Path(output) if output else run_dir / f"eval-{Path(str(data)).name.split('.')[0]}"
    result = _evaluate(run_dir, out_dir, cfg, train, records, baselines,
                       {"data": {"file": str(data), "n_scored": len(records)}})
    result["output"] = str(out_dir)
    return result
