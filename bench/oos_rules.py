"""Out-of-scope rejection rules compared on one trained intent run (e.g. CLINC150).

Predicts the labelled file once, then calibrates and scores each rule (max-probability or
energy threshold at several target oos recalls, or the trained oos class): in-scope accuracy,
oos recall and precision. With ``--calibrate FILE`` thresholds are fitted on that file and
scored on ``--data`` (no peeking); without it both are the same file, as `landfall train`
does at the end of training.

    python bench/oos_rules.py runs/clinc150 --data $LANDFALL_DATA/clinc150/validation.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from landfall.data.labels import encode_labels
from landfall.data.readers import read_examples
from landfall.inference.loading import load_run, run_config
from landfall.inference.rejection import OOSRule, fit_rule
from landfall.tasks.classification.config import OOSConfig
from landfall.utils.quiet import quiet_transformers

RULES = [("class", 0.0), ("max_prob", 0.0), ("max_prob", 0.8), ("max_prob", 0.9),
         ("energy", 0.0), ("energy", 0.8), ("energy", 0.9)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--data", required=True, help="Labelled file to score on.")
    p.add_argument("--calibrate", default="", help="Labelled file to fit thresholds on.")
    p.add_argument("--out", default="bench/results/oos_rules.json")
    a = p.parse_args()
    quiet_transformers()
    cfg = run_config(a.run_dir)
    pred = load_run(a.run_dir)

    def scored(path):
        ex = read_examples(path, text_field=cfg.data.text_field, label_field=cfg.data.label_field)
        y = encode_labels(ex, pred.labels, label_field=cfg.data.label_field)
        return pred.predict([e.text for e in ex]), y

    test_pred, test_y = scored(a.data)
    cal_pred, cal_y = scored(a.calibrate) if a.calibrate else (test_pred, test_y)
    rows = []
    for method, target in RULES:
        fitted = fit_rule(OOSConfig(label=cfg.oos.label or "oos", method=method,
                                    target_recall=target), cal_pred, cal_y)
        rule = OOSRule(fitted["label"], method, fitted["threshold"])
        m = rule.evaluate(test_pred, test_y)
        rows.append({"method": method, "target_recall": target, "threshold": rule.threshold,
                     **{k: m[k] for k in ("in_scope_accuracy", "oos_recall", "oos_precision")}})
        print(json.dumps(rows[-1]), flush=True)
    Path(a.out).write_text(json.dumps({"run": str(a.run_dir), "data": a.data,
                                       "calibrate": a.calibrate or a.data, "rows": rows},
                                      indent=2) + "\n")
    print("| rule | target oos recall | threshold | in-scope acc | oos recall | oos precision |"
          "\n|---|---|---|---|---|---|")
    for r in rows:
        t = "—" if r["threshold"] is None else f"{r['threshold']:.3f}"
        print(f"| {r['method']} | {r['target_recall'] or 'balanced'} | {t} "
              f"| {r['in_scope_accuracy']:.2%} | {r['oos_recall']:.2%} "
              f"| {r['oos_precision']:.2%} |")


if __name__ == "__main__":
    main()
