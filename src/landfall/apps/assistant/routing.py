"""The routing thresholds, chosen by ``build`` on the tuning rows (never the reported
validation rows) and recorded in the manifest with the figures they gave there.

* ``template``: the lowest intent probability at which the routed tuning rows are classified
  at least ``routing.target_template_precision`` right (a template answers only when the
  intent is almost surely right). Every tuning row counts, those of intents the classifier
  does not know too (``assistant.holdout_intents``: new questions, which no template may
  answer), except the rows that the knowledge base takes as new topics (below): those never
  reach a template;
* ``oos`` and ``kb_cosine``: a request is handed off as out of scope when its ``out_of_scope``
  probability reaches ``oos`` and no knowledge-base passage reaches cosine ``kb_cosine``;
  the pair that hands off the most out-of-domain tuning texts while handing off at most
  ``routing.target_inscope_handoff`` of the in-scope tuning rows (held-out intents
  included: the knowledge base answers them);
* ``consensus_k`` (when ``retrieval.consensus_k`` is -1): how many of the best passages are
  compared, among ``retrieval.consensus_candidates``: the count whose most central answer
  scores the highest mean ROUGE-L against the references of the tuning rows that the
  classifier alone would not give a template (all tuning rows when fewer than 20 of them);
  a tie (within 0.1 point) goes to the smaller count, which is faster;
* new topics (``routing.new_topics_overrule``): a request whose ``consensus_k`` best passages
  are mostly of intents the classifier was not trained on (FAQ entries added later) is a
  new question, whatever the classifier's confidence; how many tuning rows that takes, known
  intents' and new ones', is recorded;
* ``knowledge``: the lowest agreement of the ``consensus_k`` best passages at which
  the passage that would answer is of the request's own intent at least
  ``routing.target_knowledge_precision`` of the time, on the tuning rows that no template
  answers (all of them when fewer than 20).

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


def consensus_count(a, rows, candidates: list[int]) -> tuple[int, dict]:
    """The passage count among ``candidates`` whose most central answer is nearest the
    rows' references (mean ROUGE-L), and each count's score."""
    from landfall.apps.assistant.templates import agreement
    from landfall.tasks.causal_lm.metrics import rouge

    hits = a.kb.search([x.request for x in rows], max(candidates))
    scores = {}
    for k in candidates:
        answers = [h[agreement([doc.text for doc, _ in h[:k]])[0]][0].text if h else ""
                   for h in hits]
        scores[k] = round(float(np.mean(rouge(answers, [x.response for x in rows])["rougeL"])),
                          4)
    top = max(scores.values())
    return min(k for k in candidates if scores[k] >= top - 0.001), scores


def new_topic_rows(a, rows, k: int) -> np.ndarray:
    """Which of ``rows`` the knowledge base takes from a confident template
    (``routing.new_topics_overrule``): most of their ``k`` best passages are of intents the
    classifier does not know."""
    return np.array([bool(a.new_topic_majority(h)) for h in
                     a.kb.search([x.request for x in rows], k)], dtype=bool)


def candidates(spec: str) -> list[int]:
    from landfall.errors import LandfallError

    try:
        out = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        out = []
    if not out or out[0] < 2:
        raise LandfallError(f"retrieval.consensus_candidates: {spec!r} is not a comma-separated "
                            "list of passage counts of at least 2")
    return out


def _rest(rows, routed: np.ndarray) -> list:
    """The tuning rows no template answers (all of them when fewer than 20)."""
    rest = [x for x, on in zip(rows, routed, strict=True) if not on]
    return rest if len(rest) >= 20 else list(rows)


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
    k, kfig = cfg.retrieval.consensus_k, {}
    if k < 0:
        k, scores = consensus_count(a, _rest(tune_rows, routed),
                                    candidates(cfg.retrieval.consensus_candidates))
        kfig["consensus_rougeL"] = scores
    if r.new_topics_overrule and k >= 2:
        # rows the knowledge base takes as new topics never reach a template: the template
        # threshold is chosen again on the others
        new = new_topic_rows(a, tune_rows, k)
        if r.template_threshold < 0:
            t_tpl = template_threshold(score[~new], correct[~new], r.target_template_precision)
        unknown = np.array([x.intent not in a.intents for x in tune_rows])
        taken = (score >= t_tpl) & new
        kfig.update({"overrule_rows": int(taken.sum()),
                     "overrule_of": int((score >= t_tpl).sum()),
                     "overrule_precision": round(float(unknown[taken].mean()), 4)
                     if taken.any() else None,
                     "new_topic_rows_taken": f"{int((new & unknown).sum())} of "
                                             f"{int(unknown.sum())}",
                     "known_rows_taken": f"{int((new & ~unknown).sum())} of "
                                         f"{int((~unknown).sum())}"})
        routed = (score >= t_tpl) & ~new
    if r.knowledge_threshold >= 0 or k < 2:
        t_kb = r.knowledge_threshold if k >= 2 else 1.01
    else:
        t_kb, fig_kb = knowledge_threshold(a, _rest(tune_rows, routed), k,
                                           r.target_knowledge_precision)
        kfig.update(fig_kb)
    return {"template": round(float(t_tpl), 4), "oos": round(float(t_oos), 4),
            "kb_cosine": round(float(c), 4), "knowledge": round(float(t_kb), 4),
            "consensus_k": int(k),
            "chosen_on": {**kfig,
                "tune_rows": len(tune_rows), "out_of_domain_tune_texts": len(ood_tune),
                "template_share": round(float(routed.mean()), 4),
                "template_precision": round(float(correct[routed].mean())
                                            if routed.any() else 0.0, 4),
                **{k: round(v, 4) for k, v in fig.items()}}}
