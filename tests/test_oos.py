"""Out-of-scope rejection: the numpy maths, then a tiny CLINC150 run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import landfall
from conftest import DATA, need_data, tiny_config
from landfall.config import build_config
from landfall.errors import ConfigError, LandfallError
from landfall.inference.predictor import Prediction
from landfall.inference.rejection import OOSRule, load_rule
from landfall.tasks.classification.oos import (
    calibrate,
    in_scope_argmax,
    oos_metrics,
    predict_ids,
    scores,
)

# -- scores --------------------------------------------------------------------------------


def test_max_prob_renormalises_without_the_oos_class():
    logits = np.array([[2.0, 0.0, 5.0], [0.0, 0.0, -1.0]])
    s = scores(logits, ["a", "b", "oos"], "oos", "max_prob")
    np.testing.assert_allclose(s, [np.e**2 / (np.e**2 + 1), 0.5])
    # a model without the oos class: every column counts
    s2 = scores(logits, ["a", "b", "c"], "oos", "max_prob")
    np.testing.assert_allclose(s2[1], 1 / (2 + np.exp(-1)))


def test_energy_is_logsumexp_of_in_scope_logits():
    logits = np.array([[2.0, 0.0, 50.0]])
    s = scores(logits, ["a", "b", "oos"], "oos", "energy")
    np.testing.assert_allclose(s, [np.log(np.exp(2.0) + 1.0)])


def test_energy_and_max_prob_order_differently():
    # two confident-looking but tied logits vs one small, peaked pair
    logits = np.array([[10.0, 10.0], [1.0, -5.0]])
    mp = scores(logits, ["a", "b"], "oos", "max_prob")
    en = scores(logits, ["a", "b"], "oos", "energy")
    assert mp[1] > mp[0] and en[0] > en[1]
    # shifting every logit moves the energy score, never the softmax one
    np.testing.assert_allclose(scores(logits + 3, ["a", "b"], "oos", "max_prob"), mp)
    np.testing.assert_allclose(scores(logits + 3, ["a", "b"], "oos", "energy"), en + 3)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown oos score method"):
        scores(np.zeros((1, 2)), ["a", "b"], "oos", "entropy")


# -- calibration ---------------------------------------------------------------------------

OOS = 2
# in-scope rows (classes 0 and 1, all predicted right), then two oos rows
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.65])
Y = np.array([0, 1, 0, 1, OOS, OOS])
P = np.array([0, 1, 0, 1, 0, 1])


def _at(threshold: float, s=S, y=Y, p=P) -> dict:
    return oos_metrics(y, np.where(s < threshold, OOS, p), OOS)


def test_calibrate_maximises_mean_of_in_scope_accuracy_and_oos_recall():
    # reject < t: t in (0.65, 0.7] catches both oos and loses one in-scope row: mean 0.875
    t = calibrate(S, Y, P, OOS)
    assert t == pytest.approx(0.675)
    m = _at(t)
    assert m["in_scope_accuracy"] == 0.75 and m["oos_recall"] == 1.0


def test_calibrate_honours_target_recall():
    t = calibrate(S, Y, P, OOS, target_recall=0.5)
    assert t == pytest.approx(0.55)  # the lowest threshold that catches one oos of two
    m = _at(t)
    assert m["in_scope_accuracy"] == 1.0 and m["oos_recall"] == 0.5
    assert calibrate(S, Y, P, OOS, target_recall=1.0) == pytest.approx(0.675)


def test_calibrate_can_reject_everything_when_recall_demands_it():
    s = np.array([0.9, 0.8, 0.95])
    y, p = np.array([0, 1, OOS]), np.array([0, 1, 0])
    t = calibrate(s, y, p, OOS, target_recall=1.0)
    assert t > 0.95
    assert _at(t, s, y, p)["oos_recall"] == 1.0


def test_wrong_in_scope_predictions_do_not_count_as_accurate():
    p = P.copy()
    p[2] = 1  # row 2 (score 0.7) is wrong: rejecting it costs nothing, so (0.65, 0.7] and
    t = calibrate(S, Y, p, OOS)  # (0.7, 0.8] tie at mean 0.75; the lower threshold wins
    assert t == pytest.approx(0.675)
    m = _at(t, p=p)
    assert m["in_scope_accuracy"] == 0.5 and m["oos_recall"] == 1.0


def test_calibrate_needs_both_kinds_of_examples():
    with pytest.raises(ValueError, match="both in-scope and out-of-scope"):
        calibrate(S[:4], Y[:4], P[:4], OOS)


# -- metrics and prediction ----------------------------------------------------------------


def test_oos_metrics_by_hand():
    y = [0, 1, 2, 2, 2, 0]
    p = [0, 2, 2, 0, 2, 1]
    m = oos_metrics(y, p, 2)
    assert m["in_scope_accuracy"] == pytest.approx(1 / 3)
    assert m["oos_recall"] == pytest.approx(2 / 3)
    assert m["oos_precision"] == pytest.approx(2 / 3)
    assert m["oos_f1"] == pytest.approx(2 / 3)
    assert (m["n_in_scope"], m["n_oos"]) == (3, 3)
    assert oos_metrics([0, 1], [0, 1], 2)["oos_precision"] == 0.0


def test_predict_ids_rejects_below_threshold_and_class_uses_argmax():
    labels = ["a", "b", "oos"]
    logits = np.array([[3.0, 0.0, 0.0], [0.1, 0.0, 9.0], [0.0, 0.2, 0.0]])
    np.testing.assert_array_equal(in_scope_argmax(logits, labels, "oos"), [0, 0, 1])
    np.testing.assert_array_equal(predict_ids(logits, labels, "oos", "class", None), [0, 2, 1])
    np.testing.assert_array_equal(predict_ids(logits, labels, "oos", "max_prob", 0.9), [0, 2, 2])
    # a model without an oos class: the oos id is the extra id len(labels)
    np.testing.assert_array_equal(
        predict_ids(logits[:, :2], ["a", "b"], "oos", "max_prob", 0.9), [0, 2, 2])


def test_rule_falls_back_to_log_probs_without_logits():
    probs = np.array([[0.9, 0.1], [0.55, 0.45]])
    pred = Prediction(probs, np.ones(2, dtype=int), ["a", "b"])
    rule = OOSRule("oos", "max_prob", 0.6)
    np.testing.assert_allclose(rule.scores(pred), [0.9, 0.55])
    assert [rule.label_names(pred.labels)[i] for i in rule.label_ids(pred)] == ["a", "oos"]


def test_bad_config_and_bad_oos_json_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="oos.method must be one of"):
        build_config({"oos": {"method": "entropy"}})
    with pytest.raises(ConfigError, match="oos.target_recall"):
        build_config(None, ["oos.target_recall=1.5"])
    (tmp_path / "oos.json").write_text('{"label": "oos", "method": "energy"}')
    with pytest.raises(LandfallError, match="oos.json: field 'threshold'"):
        load_rule(tmp_path)


# -- end to end: a tiny CLINC150 slice -----------------------------------------------------

INTENTS = 6
PER_INTENT = 20


@pytest.fixture(scope="module")
def clinc_small(tmp_path_factory):
    """6 intents + oos, 20 examples each, from the real CLINC150 training file."""
    need_data()
    counts: dict[str, int] = {}
    rows = []
    with open(DATA / "clinc150" / "train.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            intent = row["intent"]
            if intent not in counts and (intent == "oos" or
                                         sum(k != "oos" for k in counts) < INTENTS):
                counts[intent] = 0
            if intent in counts and counts[intent] < PER_INTENT:
                counts[intent] += 1
                rows.append(row)
    assert "oos" in counts and len(counts) == INTENTS + 1
    path = tmp_path_factory.mktemp("clinc") / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tiny_model, data, **oos):
    cfg = tiny_config(tiny_model, data, train={"epochs": 1.0, "eval_every": 0},
                      report={"baseline": False, "plots": False})
    cfg["data"].update(label_field="intent", max_length=32, truncation="head")
    cfg["oos"] = oos
    return build_config(cfg)


@pytest.fixture(scope="module")
def oos_run(tiny_model, clinc_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("oos-run") / "r"
    landfall.train(_config(tiny_model, clinc_small, label="oos", method="max_prob"), out)
    return out


def test_training_writes_oos_json_eval_and_report(oos_run):
    rule = json.loads((oos_run / "oos.json").read_text())
    assert rule["label"] == "oos" and rule["method"] == "max_prob"
    assert isinstance(rule["threshold"], float)
    assert set(rule["validation"]) >= {"in_scope_accuracy", "oos_recall", "oos_precision"}
    ev = json.loads((oos_run / "eval.json").read_text())
    assert ev["oos"] == rule
    assert "Out-of-scope" in (oos_run / "report.md").read_text()


def test_predict_and_evaluate_apply_the_rule(oos_run, clinc_small, tmp_path):
    rule = json.loads((oos_run / "oos.json").read_text())
    results = {}
    for name, threshold in (("none", -1.0), ("all", 2.0)):  # max_prob scores lie in [0, 1]
        (oos_run / "oos.json").write_text(json.dumps({**rule, "threshold": threshold}))
        out = tmp_path / f"{name}.jsonl"
        landfall.predict(oos_run, clinc_small, out)
        results[name] = [json.loads(line) for line in out.read_text().splitlines()]
        ev = landfall.evaluate(oos_run, clinc_small, tmp_path / f"ev-{name}")
        assert {"in_scope_accuracy", "oos_recall", "oos_precision"} <= set(ev["oos"])
    (oos_run / "oos.json").write_text(json.dumps(rule))
    assert all(r["label"] == "oos" for r in results["all"])
    assert all(r["label"] != "oos" for r in results["none"])  # in-scope argmax only
    assert [r["probs"] for r in results["all"]] == [r["probs"] for r in results["none"]]
    assert all(0.0 <= r["oos_score"] <= 1.0 for r in results["all"])
    assert ev["oos"]["oos_recall"] == 1.0 and ev["oos"]["in_scope_accuracy"] == 0.0


def test_oos_label_missing_from_training_data_fails_before_training(tiny_model, clinc_small,
                                                                    tmp_path):
    with pytest.raises(LandfallError, match="oos.label='nope' is not a label"):
        landfall.train(_config(tiny_model, clinc_small, label="nope"), tmp_path / "r")
    assert not (tmp_path / "r" / "model").exists()
