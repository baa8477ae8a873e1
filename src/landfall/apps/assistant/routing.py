"""The routing thresholds, chosen by ``build`` on the tuning rows (never the reported
validation rows) and recorded in the manifest with the figures they gave there.

* ``template``: the lowest intent probability at which the routed tuning rows are classified
  at least ``routing.target_template_precision`` right (a template answers only when the
  intent is almost surely right). Every tuning row counts, those of intents the classifier
  does not know too (``assistant.holdout_intents``: new questions, which no template may
  answer);
* ``oos`` and ``kb_cosine``: a request is handed off as out of scope when its ``out_of_scope``
  probability reaches ``oos`` and no knowledge-base passage reaches cosine ``kb_cosine``;
  the pair that hands off the most out-of-domain tuning texts while handing off at most
  ``routing.target_inscope_handoff`` of the in-scope tuning rows (held-out intents
  included: the knowledge base answers them);
* ``knowledge``: the lowest agreement of the ``retrieval.consensus_k`` best passages at which
  the passage that would answer is of the request's own intent at least
  ``routing.target_knowledge_precision`` of the time, on the tuning rows that the template
  does not answer (all tuning rows when fewer than 20 of them). The same bar lets the
  knowledge base overrule a confident template when most of those passages are of intents
  the classifier was not trained on (``routing.new_topics_overrule``); how many tuning rows
  that takes, and how many of them rightly, is recorded.

A threshold set in the config (not -1) is kept as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landfall.config import Config


def template_threshold(score: np.ndarray, correct: np.ndarray, target: float) -> float:
    order = np.argsort(-score)
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    ok = np.nonzero(precision >= target)[0]
    if len(ok) == 0:
        return 1.01  # never confident enough: every request goes to retrieval
    # the largest prefix (lowest threshold) whose precision still meets the target
    return float(score[order][ok.max()])


def oos_thresholds(p_in: np.ndarray, cos_in: np.ndarray, p_out: np.ndarray,
                   cos_out: np.ndarray, max_inscope: float) -> tuple[float, float, dict]:
    best = (1.01, -1.0, {"oos_recall": 0.0, "inscope_handoff": 0.0})
    for t in np.unique(np.round(np.concatenate([p_in, p_out, [0.5]]), 3)):
        for c in np.round(np.arange(0.3, 1.01, 0.05), 2):
            inscope = float(np.mean((p_in >= t) & (cos_in < c)))
            if inscope > max_inscope:
                continue
            recall = float(np.mean((p_out >= t) & (cos_out < c)))
            if recall > best[2]["oos_recall"] or (recall == best[2]["oos_recall"]
                                                  and inscope < best[2]["inscope_handoff"]):
                best = (float(t), float(c), {"oos_recall": recall, "inscope_handoff": inscope})
    return best


def knowledge_threshold(a, rows, k: int, target: float) -> tuple[float, dict]:
    from landfall.apps.assistant.templates import agreement

    agree, right = [], []
    for row, hits in zip(rows, a.kb.search([x.request for x in rows], k), strict=True):
        if len(hits) < 2:
            continue
        i, g = agreement([doc.text for doc, _ in hits])
        agree.append(g)
        right.append(hits[i][0].intent == row.intent)
    if not agree:
        return 1.01, {}
    agree_a, right_a = np.array(agree), np.array(right)
    t = template_threshold(agree_a, right_a, target)
    on = agree_a >= t
    return t, {"knowledge_rows": len(agree), "knowledge_share": round(float(on.mean()), 4),
               "knowledge_precision": round(float(right_a[on].mean()) if on.any() else 0.0, 4)}


def overrule_figures(a, rows, k: int, bar: float) -> dict:
    """On the tuning rows a template answers: how many the knowledge base would take over
    (``routing.new_topics_overrule``: most of the ``k`` best passages are of intents the
    classifier does not know, and they agree at ``bar``), and how often its answering passage
    is then of the row's own intent."""
    from landfall.apps.assistant.templates import agreement

    taken = right = 0
    for row, hits in zip(rows, a.kb.search([x.request for x in rows], k), strict=True):
        if not a.new_topic_majority(hits):
            continue
        i, g = agreement([doc.text for doc, _ in hits])
        if g >= bar:
            taken += 1
            right += hits[i][0].intent == row.intent
    return {"overrule_rows": taken, "overrule_of": len(rows),
            "overrule_precision": round(right / taken, 4) if taken else None}


def choose_thresholds(run_dir: Path, cfg: Config, tune_rows, ood_tune: list[str]) -> dict:
    from landfall.apps.assistant.assistant import Assistant

    a = Assistant(run_dir, generator=False, fill_profile=False)
    best, score, _ = a.classify([r.request for r in tune_rows])
    correct = np.array([a.labels[int(b)] == r.intent
                        for b, r in zip(best, tune_rows, strict=True)])
    r = cfg.routing
    t_tpl = (r.template_threshold if r.template_threshold >= 0 else
             template_threshold(score, correct, r.target_template_precision))
    inscope = [x.request for x in tune_rows]
    _, _, p_in = a.classify(inscope)
    _, _, p_out = a.classify(ood_tune) if ood_tune else (None, None, np.zeros(0))
    top = lambda texts: np.array([max((h.dense for _, h in row), default=-1.0)  # noqa: E731
                                  for row in a.kb.search(texts, 1)])
    cos_in = top(inscope)
    cos_out = top(ood_tune) if ood_tune else np.zeros(0)
    if r.oos_threshold >= 0:
        t_oos, c, fig = r.oos_threshold, 1.0, {}
    else:
        t_oos, c, fig = oos_thresholds(p_in, cos_in, p_out, cos_out, r.target_inscope_handoff)
    routed = score >= t_tpl
    k = cfg.retrieval.consensus_k
    if r.knowledge_threshold >= 0 or k < 2:
        t_kb, kfig = (r.knowledge_threshold if k >= 2 else 1.01), {}
    else:
        rest = [x for x, on in zip(tune_rows, routed, strict=True) if not on]
        t_kb, kfig = knowledge_threshold(a, rest if len(rest) >= 20 else tune_rows, k,
                                         r.target_knowledge_precision)
    if r.new_topics_overrule and t_kb <= 1.0 and routed.any():
        kfig.update(overrule_figures(a, [x for x, on in zip(tune_rows, routed, strict=True)
                                         if on], k, t_kb))
    return {"template": round(float(t_tpl), 4), "oos": round(float(t_oos), 4),
            "kb_cosine": round(float(c), 4), "knowledge": round(float(t_kb), 4),
            "chosen_on": {**kfig,
                "tune_rows": len(tune_rows), "out_of_domain_tune_texts": len(ood_tune),
                "template_share": round(float(routed.mean()), 4),
                "template_precision": round(float(correct[routed].mean())
                                            if routed.any() else 0.0, 4),
                **{k: round(v, 4) for k, v in fig.items()}}}
