"""The harmful-content guard against its peers on the same validation rows.

    LANDFALL_DATA=../shared/data python bench/guard.py --run runs/davidson \
        --run runs/davidson-mpnet --out bench/results/guard.json

Systems: the Landfall runs or ensembles (examples/davidson-minilm.toml, davidson-mpnet.toml;
the split comes from the first), alt-profanity-check (a linear SVM on a profanity corpus,
binary: offensive or not), a deny list (better-profanity's 916-word list: a listed word means
offensive; it cannot tell hate from offence) and TF-IDF logistic regression with balanced
class weights trained here on the run's own training split.
Per-class precision/recall/F1, macro-F1, and the hate-speech precision/recall curve (PNG).
The rows are the run's seeded validation split (or --test FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

HATE, OFFENSIVE, NEITHER = "hate_speech", "offensive_language", "neither"


def scores(y, pred, labels):
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y, pred, labels=range(len(labels)),
                                                 zero_division=0)
    per = {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                 "support": int(n[i])} for i, lab in enumerate(labels)}
    harmful_y = [labels[i] != NEITHER for i in y]
    harmful_p = [labels[i] != NEITHER for i in pred]
    return {"per_class": per, "macro_f1": float(f1_score(y, pred, average="macro")),
            "accuracy": float(np.mean(np.asarray(y) == np.asarray(pred))),
            "harmful_vs_neither_f1": float(f1_score(harmful_y, harmful_p))}


def deny_list_predict(texts, labels):
    import better_profanity

    words = Path(better_profanity.__file__).with_name("profanity_wordlist.txt").read_text()
    listed = {w.strip().lower() for w in words.splitlines() if w.strip()}
    tok = re.compile(r"[a-z0-9']+")
    return [labels.index(OFFENSIVE) if listed & set(tok.findall(t.lower()))
            else labels.index(NEITHER) for t in texts]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", help="a guard run (repeatable; default "
                    "runs/davidson); the validation rows are the first run's")
    ap.add_argument("--test", default="", help="a labelled file instead of the run's split")
    ap.add_argument("--out", default="bench/results/guard.json")
    a = ap.parse_args()
    a.run = a.run or ["runs/davidson"]

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import precision_recall_curve
    from sklearn.pipeline import make_pipeline, make_union

    from landfall.data.prepare import carve
    from landfall.data.readers import read_examples
    from landfall.inference.loading import load_run, run_config

    cfg = run_config(a.run[0])
    train, val, _, _, source = carve(cfg.data, cfg.train.seed)
    if a.test:
        val = read_examples(a.test, text_field=cfg.data.text_field,
                            label_field=cfg.data.label_field, label_names=cfg.data.names())
        source = a.test
    first = load_run(a.run[0])
    labels = first.labels
    texts = [e.text for e in val]
    y = [labels.index(e.label) for e in val]
    out = {"machine": machine(), "rows": len(val), "source": source, "systems": {},
           "hate_share": float(np.mean([labels[i] == HATE for i in y]))}
    curves = {}

    for run in a.run:
        run_cfg = run_config(run)
        if run_cfg.data.split_key(run_cfg.train.seed) != cfg.data.split_key(cfg.train.seed):
            raise SystemExit(f"{run}: another training file, split or seed than {a.run[0]}")
        predictor = first if run == a.run[0] else load_run(run)
        if predictor.labels != labels:
            raise SystemExit(f"{run}: labels {predictor.labels} differ from {labels}")
        t = time.time()
        probs = predictor.predict(texts, progress=True).probs
        name = "landfall" if run == a.run[0] else f"landfall_{Path(run).name}"
        out["systems"][name] = scores(y, probs.argmax(1), labels) | {
            "seconds": time.time() - t, "what": f"{run} ({run_cfg.model.name})"}
        curves[f"Landfall {Path(run).name} ({Path(run_cfg.model.name).name})"] = probs[
            :, labels.index(HATE)]

    t = time.time()
    lr = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                   sublinear_tf=True)),
        LogisticRegression(class_weight="balanced", max_iter=2000, C=4.0))
    lr.fit([e.text for e in train], [labels.index(e.label) for e in train])
    p_lr = lr.predict_proba(texts)
    out["systems"]["tfidf_lr_balanced"] = scores(y, p_lr.argmax(1), labels) | {
        "seconds": time.time() - t, "what": "word 1-2 + char 2-5 TF-IDF, LR balanced, C=4"}
    curves["TF-IDF LR balanced"] = p_lr[:, labels.index(HATE)]

    from profanity_check import predict_prob

    t = time.time()
    p_prof = predict_prob(texts)
    pred = [labels.index(OFFENSIVE) if p >= 0.5 else labels.index(NEITHER) for p in p_prof]
    out["systems"]["alt_profanity_check"] = scores(y, pred, labels) | {
        "seconds": time.time() - t, "what": "alt-profanity-check 1.9.1, p >= 0.5 = offensive"}
    curves["alt-profanity-check (p offensive)"] = p_prof

    t = time.time()
    pred = deny_list_predict(texts, labels)
    out["systems"]["deny_list"] = scores(y, pred, labels) | {
        "seconds": time.time() - t, "what": "better-profanity 0.7.0 word list (916 words)"}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    is_hate = np.asarray([labels[i] == HATE for i in y])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, s in curves.items():
        prec, rec, _ = precision_recall_curve(is_hate, s)
        ax.plot(rec, prec, label=name)
    ax.scatter([0.61], [0.44], marker="*", s=120, c="k", label="Davidson et al. 2017")
    ax.set_xlabel("hate-speech recall")
    ax.set_ylabel("hate-speech precision")
    ax.set_title(f"Hate speech, {len(y)} validation tweets ({is_hate.mean():.1%} hate)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = Path(a.out).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    out["plot"] = str(png)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(f"{'system':24} {'macro-F1':>8} {'hate P':>7} {'hate R':>7} {'hate F1':>7} "
          f"{'off F1':>7} {'neither F1':>10} {'harmful F1':>10}")
    for name, r in out["systems"].items():
        h, o, n = (r["per_class"][k] for k in (HATE, OFFENSIVE, NEITHER))
        print(f"{name:24} {r['macro_f1']:8.3f} {h['precision']:7.3f} {h['recall']:7.3f} "
              f"{h['f1']:7.3f} {o['f1']:7.3f} {n['f1']:10.3f} {r['harmful_vs_neither_f1']:10.3f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LANDFALL_PROGRESS", "1")
    sys.exit(main())
