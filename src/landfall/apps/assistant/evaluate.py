"""``landfall assistant eval``: the assistant and each single component on the same rows.

Scored per system: ROUGE-L and MiniLM cosine of the answers against the references (rows
with a reference), the share answered by a vetted template, and latency (mean, p50, p95).
The assistant adds intent accuracy, route shares, the hand-off rate on out-of-scope rows and
on in-scope ones, the refusal rate on harmful rows, and latency per route.

The answers are scored with the business profile's slots unfilled, as the references write
them (``{{Website Name}}``); the request's own entities are filled, as in service.
Generating components write every row's answer in batches (quality) and are timed one
request at a time on the first ``latency_rows`` rows (latency); the assistant and the
non-generating components are timed on every row.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from landfall.apps.assistant import data as D
from landfall.apps.assistant.assistant import ROUTES, Assistant
from landfall.apps.assistant.build import sample_stratified, say
from landfall.apps.assistant.prompts import grounded_prompt, split_sources
from landfall.apps.assistant.slots import fill
from landfall.runs import write_json, write_text
from landfall.utils.progress import progress_bar


def _lat(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.asarray(xs)
    return {"n": len(xs), "mean_ms": round(float(a.mean()) * 1000, 1),
            "p50_ms": round(float(np.percentile(a, 50)) * 1000, 1),
            "p95_ms": round(float(np.percentile(a, 95)) * 1000, 1)}


def quality(answers: list[str], refs: list[str], embedder) -> dict:
    from landfall.tasks.causal_lm.metrics import cosine, rouge

    if not refs:
        return {"rougeL": None, "cosine": None, "n": 0}
    r = rouge(answers, refs)["rougeL"]
    cos = cosine(embedder.embed(answers), embedder.embed(refs))
    return {"rougeL": round(float(np.mean(r)), 4), "cosine": round(float(np.mean(cos)), 4),
            "n": len(refs), "rougeL_rows": [round(float(x), 4) for x in r]}


def _timed(fn, items) -> tuple[list, list[float]]:
    out, times = [], []
    for x in items:
        t = time.perf_counter()
        out.append(fn(x))
        times.append(time.perf_counter() - t)
    return out, times


def score_components(a: Assistant, rows: list[D.Row], latency_rows: int) -> dict[str, dict]:
    """Each single system on the rows with a reference: answers and latencies."""
    reqs = [r.request for r in rows]
    out: dict[str, dict] = {}

    def template_only(text: str) -> str:
        best, _, _ = a.classify([text])
        intent = a.labels[int(best[0])]
        tpl = a.templates.get(intent)
        if not tpl:
            return ""
        return fill(tpl[0].text, a.finder.find(text), a.profile)[0]

    answers, times = _timed(template_only, reqs)
    out["template_only"] = {"answers": answers, "times": times, "template": True}

    def retrieval_only(text: str) -> str:
        hits = a.kb.search([text], 1)[0]
        return hits[0][0].text if hits else ""

    answers, times = _timed(retrieval_only, reqs)
    out["retrieval_only"] = {"answers": answers, "times": times}
    if a.generator is None:
        return out
    k, words = a.cfg.retrieval.top_k, a.cfg.retrieval.passage_words

    def grounded(text: str) -> str:
        hits = a.kb.search([text], k)[0]
        return grounded_prompt(text, [(d.title, d.text) for d, _ in hits], words)

    for name, make in (("generator_alone", lambda t: t), ("generator_retrieval", grounded)):
        say(f"eval: {name} on {len(reqs)} rows")
        prompts = [make(t) for t in reqs]
        raw = a.generate_text(prompts)
        answers = [fill(split_sources(x)[1].strip(), a.finder.find(t), a.profile)[0]
                   for x, t in zip(raw, reqs, strict=True)]
        _, times = _timed(lambda t, make=make: a.generate_text([make(t)]),
                          reqs[:latency_rows])
        out[name] = {"answers": answers, "times": times}
    return out


def evaluate(run_dir: str | Path, data: str | Path, output: str | Path, *, limit: int = 0,
             components: bool = True, latency_rows: int = 20) -> dict:
    a = Assistant(run_dir, fill_profile=False)
    rows = D.read_rows(str(data), a.cfg)
    if limit:
        rows = sample_stratified(rows, limit, a.cfg.assistant.seed)
    output = Path(output)
    replies, per_route = [], {r: [] for r in ROUTES}
    bar = progress_bar(total=len(rows), desc="assistant", unit="row")
    for row in rows:
        reply = a.respond(row.request)  # each row its own conversation
        bar.update(1)
        replies.append({"request": row.request, "expected_intent": row.intent,
                        "reference": row.response, "answer": reply.text,
                        "latency_s": reply.latency_s, **reply.to_json()})
        per_route[reply.decision.route].append(reply.latency_s)
    bar.close()
    scored = [i for i, r in enumerate(rows) if r.response.strip() and
              r.intent not in (D.OOS, D.HARMFUL)]
    refs = [rows[i].response for i in scored]
    oos = [x for x in replies if x["expected_intent"] == D.OOS]
    harmful = [x for x in replies if x["expected_intent"] == D.HARMFUL]
    inscope = [x for x in replies if x["expected_intent"] not in (D.OOS, D.HARMFUL)]
    known = [x for x in inscope if x["expected_intent"] in a.intents]
    share = lambda xs, route: (round(sum(x["route"] == route for x in xs) / len(xs), 4)  # noqa: E731
                               if xs else None)
    assistant_q = quality([replies[i]["answer"] for i in scored], refs, a.embedder)
    result = {
        "run": str(run_dir), "data": str(data), "rows": len(rows), "scored_rows": len(scored),
        "rougeL": assistant_q["rougeL"], "cosine": assistant_q["cosine"],
        "template_share": share(inscope, "template"),
        "route_shares": {r: share(replies, r) for r in ROUTES},
        "handoff_rate": {"out_of_scope": share(oos, "handoff"),
                         "in_scope": share(inscope, "handoff")},
        "oos_handled": (round(sum(x["route"] in ("handoff", "refuse") for x in oos)
                              / len(oos), 4) if oos else None),
        "refusal_rate": {"harmful": share(harmful, "refuse"),
                         "in_scope": share(inscope, "refuse")},
        # the classifier's intent (a refused message is never classified: it counts as wrong)
        "intent_accuracy": (round(sum(x["intent"] == x["expected_intent"] for x in known)
                                  / len(known), 4) if known else None),
        "latency": {"all": _lat([x["latency_s"] for x in replies]),
                    **{r: _lat(v) for r, v in per_route.items()}},
        "slots_left": sum(len(x["slots_left"]) for x in replies),
        "thresholds": a.thresholds,
    }
    systems = {"assistant": {"rougeL": assistant_q["rougeL"], "cosine": assistant_q["cosine"],
                             "template_share": share([replies[i] for i in scored], "template"),
                             "latency": _lat([replies[i]["latency_s"] for i in scored])}}
    if components and scored:
        comp = score_components(a, [rows[i] for i in scored], latency_rows)
        for name, c in comp.items():
            q = quality(c["answers"], refs, a.embedder)
            systems[name] = {"rougeL": q["rougeL"], "cosine": q["cosine"],
                             "template_share": 1.0 if c.get("template") else 0.0,
                             "latency": _lat(c["times"])}
            for i, ans in zip(scored, c["answers"], strict=True):
                replies[i][f"answer_{name}"] = ans
    result["systems"] = systems
    from landfall.runs import json_line

    write_text(output / "replies.jsonl", "".join(json_line(x) for x in replies))
    write_json(output / "eval.json", result)
    write_text(output / "report.md", report(result))
    result["output"] = str(output)
    return result


def report(r: dict) -> str:
    lines = [f"# Assistant evaluation: `{r['run']}`", "", f"Data: `{r['data']}`, {r['rows']} "
             f"rows ({r['scored_rows']} with a reference).", "",
             "| system | ROUGE-L | cosine | template share | mean ms | p95 ms |",
             "|---|---|---|---|---|---|"]
    for name, s in r["systems"].items():
        lat = s["latency"]
        fmt = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"| {name} | {fmt(s['rougeL'])} | {fmt(s['cosine'])} | "
                     f"{fmt(s['template_share'])} | {lat.get('mean_ms', '—')} | "
                     f"{lat.get('p95_ms', '—')} |")
    lines += ["", f"Intent accuracy (rows of intents the classifier knows): "
              f"{r['intent_accuracy']}", f"Route shares: {r['route_shares']}",
              f"Hand-off rate: {r['handoff_rate']}; out-of-scope handled (hand-off or "
              f"refusal): {r['oos_handled']}", f"Refusal rate: {r['refusal_rate']}",
              f"Latency per route: {r['latency']}", f"Slots left unfilled: {r['slots_left']}",
              f"Thresholds (chosen on the tuning rows): {r['thresholds']}", ""]
    return "\n".join(lines)
