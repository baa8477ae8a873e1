"""The customer-service assistant on tiny members trained here on real Bitext rows (and real
CLINC150 out-of-domain texts): the build's run directory, templates and slots, the knowledge
base (and adding to it without retraining), routing and its reasons, conversations, bad
input named, the service (OpenAI chat completions streamed and not, /v1/models, the chat page,
per-route metrics, the guard on streamed answers) and `assistant eval`."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from conftest import DATA, need_data, wait_ready

pytest.importorskip("faiss")
pytest.importorskip("bm25s")

INTENTS = ("cancel_order", "track_order", "get_refund", "recover_password",
           "contact_human_agent")
HATE = "all drivers are vermin"


def _rows(per_intent: int = 22) -> list[dict]:
    """Real Bitext rows: ``per_intent`` of each of INTENTS."""
    need_data()
    out, seen = [], {i: 0 for i in INTENTS}
    with open(DATA / "bitext-support" / "train.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["intent"] in seen and seen[row["intent"]] < per_intent:
                seen[row["intent"]] += 1
                out.append(row)
    return out


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _toml(path: Path, data: dict) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory, tiny_model, tiny_lm, guard_run) -> Path:
    tmp = tmp_path_factory.mktemp("assistant-config")
    data = _write_csv(tmp / "bitext.csv", _rows())
    classifier = _toml(tmp / "intents.toml", {
        "model": {"name": str(tiny_model)},
        "data": {"text_field": "text", "label_field": "intent", "max_length": 32,
                 "truncation": "head"},
        "train": {"epochs": 8.0, "batch_size": 16, "lr": 3e-3, "eval_every": 10_000,
                  "patience": 0, "threads": 1},
        "report": {"baseline": False, "plots": False}})
    generator = _toml(tmp / "generator.toml", {
        "task": {"name": "causal_lm"}, "model": {"name": str(tiny_lm)},
        "chat": {"category_field": "", "entity_field": "", "max_prompt_tokens": 1024,
                 "max_response_tokens": 32},
        "train": {"max_steps": 4, "batch_size": 8, "lr": 3e-3, "eval_every": 4,
                  "checkpoint_every": 4, "patience": 0, "threads": 1},
        "generate": {"max_new_tokens": 16, "batch_size": 4},
        "report": {"baseline": False, "plots": False, "generation_limit": 2}})
    profile = tmp / "profile.toml"
    profile.write_text('"Website Name" = "shop.example.com"\n', encoding="utf-8")
    return _toml(tmp / "assistant.toml", {
        "task": {"name": "assistant"},
        "assistant": {"data": str(data), "profile": str(profile), "seed": 3},
        "members": {"classifier": str(classifier), "generator": str(generator),
                    "guard": str(guard_run), "oos_data": str(DATA / "clinc150" / "train.jsonl"),
                    "oos_per_intent": 1, "generator_limit": 40},
        "retrieval": {"top_k": 2, "passage_words": 40},
        "guardrails": {"input_classes": "hate_speech", "output_classes": "hate_speech",
                       "redact_pii": False},
        "conversation": {"ttl_s": 60.0, "failures_before_handoff": 2}})


@pytest.fixture(scope="module")
def built(config, tmp_path_factory) -> Path:
    import landfall

    out = tmp_path_factory.mktemp("assistant") / "run"
    summary = landfall.assistant_build(out, cfg=str(config))
    assert summary["output"] == str(out)
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- the build ---------------------------------------------------------------------------

def test_build_writes_members_templates_knowledge_and_thresholds(built):
    from landfall.apps.assistant.templates import read

    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["task"] == "assistant"
    for name in ("classifier", "generator"):  # trained from presets, inside the run
        member = built / manifest["members"][name]
        assert (member / "model" / "model.safetensors").is_file()
        assert (member / "landfall.toml").is_file()
    assert Path(manifest["members"]["guard"]).is_absolute()  # adopted, by path
    # the classifier knows the intents and an out_of_scope class of CLINC150 texts
    labels = json.loads((built / manifest["members"]["classifier"] / "model" /
                         "config.json").read_text())["id2label"].values()
    assert set(labels) == {*INTENTS, "out_of_scope"}
    templates = read(built / "templates.jsonl")
    assert set(templates) == set(INTENTS)
    assert all(t.source.startswith("train line") for ts in templates.values() for t in ts)
    t = manifest["thresholds"]
    assert {"template", "oos", "kb_cosine", "knowledge"} <= set(t)
    assert t["chosen_on"]["tune_rows"] > 0 and t["chosen_on"]["out_of_domain_tune_texts"] > 0
    docs = (built / "knowledge" / "documents.jsonl").read_text().splitlines()
    assert len(docs) == manifest["rows"]["train"]
    # the answer guard was run over the business's own answers, and what it would withhold
    vetted = manifest["guard_on_vetted_answers"]
    assert vetted["templates"]["answers"] == sum(len(t) for t in templates.values())
    assert vetted["knowledge"]["answers"] == len(docs)
    assert all(0 <= v["withheld"] <= v["answers"] and len(v["examples"]) == min(3, v["withheld"])
               for v in vetted.values())
    for part in ("train", "tune", "validation"):  # the splits are disjoint rows of the file
        assert (built / "data" / f"{part}.jsonl").is_file()
    lines = [{json.loads(x)["line"] for x in (built / "data" / f"{p}.jsonl").read_text(
        ).splitlines()} for p in ("train", "tune", "validation")]
    assert not (lines[0] & lines[1] or lines[0] & lines[2] or lines[1] & lines[2])


def test_a_member_of_the_wrong_task_is_refused(config, tmp_path, built):
    import landfall
    from landfall.errors import LandfallError

    manifest = json.loads((built / "manifest.json").read_text())
    generator = built / manifest["members"]["generator"]
    with pytest.raises(LandfallError, match="members.classifier.*causal_lm run"):
        landfall.assistant_build(tmp_path / "x", cfg=str(config),
                                 overrides=[f"members.classifier={generator}"])
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(LandfallError, match="retrieval.consensus_candidates"):
        landfall.assistant_build(tmp_path / "y", cfg=str(config),
                                 overrides=["retrieval.consensus_candidates=5,one"])
    assert not (tmp_path / "y").exists()


def test_build_chooses_how_many_passages_must_agree_on_the_tuning_rows(built):
    """retrieval.consensus_k = -1: build tries each count of retrieval.consensus_candidates on
    the tuning rows, keeps the best-scoring one (the smaller on a tie), and the assistant then
    compares that many passages."""
    from landfall.apps.assistant.assistant import Assistant

    t = json.loads((built / "manifest.json").read_text())["thresholds"]
    scores = {int(k): v for k, v in t["chosen_on"]["consensus_rougeL"].items()}
    assert sorted(scores) == [3, 5, 8, 12, 20] and all(0 < v < 1 for v in scores.values())
    assert scores[t["consensus_k"]] >= max(scores.values()) - 0.001
    assert all(scores[k] < max(scores.values()) - 0.001 for k in scores if k < t["consensus_k"])
    assert Assistant(built, generator=False).consensus_k == t["consensus_k"]


def test_templates_file_errors_name_line_and_field(tmp_path):
    from landfall.apps.assistant.templates import read
    from landfall.errors import DataError

    p = tmp_path / "templates.jsonl"
    p.write_text('{"intent": "track_order", "text": "ok"}\n{"intent": "track_order"}\n')
    with pytest.raises(DataError, match=r"templates.jsonl:2: field 'text'"):
        read(p)
    p.write_text('{"intent": "fly_me", "text": "ok"}\n')
    with pytest.raises(DataError, match=r"templates.jsonl:1: field 'intent'"):
        read(p, {"track_order"})
    p.write_text('{"intent": "track_order", "text": "ok"\n')
    with pytest.raises(DataError, match="templates.jsonl:1"):
        read(p)


def test_knowledge_files_parse_or_are_refused_with_line_and_field(tmp_path):
    from landfall.apps.assistant.knowledge import read_documents
    from landfall.errors import DataError

    md = tmp_path / "faq.md"
    md.write_text("# How long is the warranty?\nTwo years on every product.\n\n"
                  "## Do you ship to Norway?\nYes, in five working days.\n")
    docs = read_documents(md)
    assert [d.title for d in docs] == ["How long is the warranty?", "Do you ship to Norway?"]
    assert docs[1].text == "Yes, in five working days."
    md.write_text("stray text\n# Title\nbody\n")
    with pytest.raises(DataError, match="faq.md:1"):
        read_documents(md)
    js = tmp_path / "kb.jsonl"
    js.write_text('{"title": "a", "text": "b"}\n{"title": "c", "text": ""}\n')
    with pytest.raises(DataError, match=r"kb.jsonl:2: field 'text'"):
        read_documents(js)


def test_slots_fill_from_entities_and_profile_and_the_rest_stay():
    from landfall.apps.assistant.slots import EntityFinder, fill, slotify

    finder = EntityFinder.learn([("account_type", "Platinum"), ("delivery_city", "Munich")])
    found = finder.find("I want to upgrade my platinum account, order 00123842")
    assert found == {"account_type": "Platinum", "order_id": "00123842"}
    assert slotify("Order 00004587345 is on its way.", "order_id", "4587345") == \
        "Order {{Order Number}} is on its way."  # the writers padded the ids
    tpl = slotify("Your Gold account is ready.", "account_type", "Gold")
    assert tpl == "Your {{Account Type}} account is ready."
    text, left = fill(tpl + " Order {{Order Number}} at {{Website Name}}; call {{Phone}}.",
                      found, {"Website Name": "shop.example.com"})
    assert text == ("Your Platinum account is ready. Order 00123842 at shop.example.com; "
                    "call {{Phone}}.")
    assert left == ["Phone"]


def test_the_template_is_the_response_that_shares_most_wording_with_the_others():
    from landfall.apps.assistant.data import Row
    from landfall.apps.assistant.templates import agreement, mine

    said = ["To track your order, log in and open Order History, then pick the order.",
            "To track your order, open Order History after you log in and pick the order.",
            "Log in, open Order History and pick the order to track it.",
            "Our couriers deliver between 9 and 5 on working days."]  # the outlier
    rows = [Row(f"q{i}", r, "track_order", line=i + 2) for i, r in enumerate(said)]
    t = mine(rows, None, per_intent=1, by="rougeL")
    assert [x.text for x in t] == [said[0]] and t[0].source == "train line 2"
    i, score = agreement(said)
    assert i == 0 and 0 < score < 1
    assert agreement(said[:1]) == (0, 0.0)


# --- routing and conversations -------------------------------------------------------------

@pytest.fixture(scope="module")
def assistant(built):
    from landfall.apps.assistant.assistant import Assistant

    return Assistant(built)


def test_every_reply_carries_route_reason_intent_and_passages(assistant):
    a = assistant
    saved = dict(a.thresholds)
    try:
        a.thresholds.update(template=0.0)  # any in-scope intent is confident enough
        r = a.respond("I want to cancel my order 00123842")
        assert r.decision.route in ("template", "handoff")
        if r.decision.route == "template":
            assert r.decision.intent in INTENTS and "template threshold" in r.decision.reason
            assert "{{Website Name}}" not in r.text  # the profile filled it
        # nothing is confident, and the passages never agree enough: the generator
        a.thresholds.update(template=1.01, oos=1.01, knowledge=1.01)
        r = a.respond("where is my parcel? it has not arrived")
        assert r.decision.route in ("generate", "handoff")
        assert len(r.decision.passages) == a.cfg.retrieval.top_k
        assert all({"id", "title", "cosine"} <= set(p) for p in r.decision.passages)
        body = r.to_json()
        assert {"route", "reason", "intent", "score", "sources", "passages"} <= set(body)
        # passages that agree answer as the knowledge base wrote them, and say which
        a.thresholds.update(knowledge=0.0)
        r = a.respond("where is my parcel? it has not arrived")
        assert r.decision.route == "knowledge" and "agree" in r.decision.reason
        assert len(r.decision.passages) == a.consensus_k
        assert len(r.sources) == 1 and r.sources[0] in r.decision.passages
        doc = next(d for d in a.kb.docs if d.id == r.sources[0]["id"])
        assert r.text.split()[:3] == doc.text.split()[:3]
    finally:
        a.thresholds.clear()
        a.thresholds.update(saved)


def test_faq_entries_on_a_new_topic_overrule_a_confident_template(assistant):
    """Documents added after training, on a topic the classifier never saw, answer a request
    that matches them even where the classifier confidently (and wrongly) names an intent
    (or, when they disagree, the generator does); with routing.new_topics_overrule off, the
    template answers."""
    from landfall.apps.assistant.knowledge import Document

    a = assistant
    saved, kb, handoff = dict(a.thresholds), a.kb, a.handoff_intents
    a.handoff_intents = set()  # the tiny classifier may name contact_human_agent
    answer = "Gift cards are sold in steps of 10 euros and never expire."
    a.kb = kb.add([Document(f"giftcards:{i}", q, answer) for i, q in enumerate((
        "can I buy a gift card", "how do gift cards work", "where do I buy a gift card",
        "do gift cards expire", "gift card for a friend"))])
    try:
        a.thresholds.update(template=0.0, knowledge=0.5)  # every intent confident
        r = a.respond("how do I buy a gift card for my friend")
        assert r.decision.route == "knowledge", r.decision.reason
        assert "not trained on" in r.decision.reason and r.text == answer
        assert r.sources[0]["id"].startswith("giftcards:")
        # passages of a new topic that do not agree: the generator composes, never a template
        a.thresholds.update(knowledge=1.01)
        r = a.respond("how do I buy a gift card for my friend")
        assert r.decision.route == "generate" and "not trained on" in r.decision.reason
        a.thresholds.update(knowledge=0.5)
        a.cfg.routing.new_topics_overrule = False
        r = a.respond("how do I buy a gift card for my friend")
        assert r.decision.route == "template" and r.decision.intent in INTENTS
        # a request about a known topic keeps its template
        a.cfg.routing.new_topics_overrule = True
        r = a.respond("I want to cancel my order 00123842")
        assert r.decision.route in ("template", "handoff")
    finally:
        a.kb, a.cfg.routing.new_topics_overrule, a.handoff_intents = kb, True, handoff
        a.thresholds.clear()
        a.thresholds.update(saved)


def test_harmful_messages_are_refused_and_out_of_scope_handed_off(assistant):
    a = assistant
    r = a.respond(HATE)
    assert r.decision.route == "refuse" and r.text == a.cfg.assistant.refusal_message
    saved = dict(a.thresholds)
    try:
        a.thresholds.update(oos=0.0, kb_cosine=1.01, template=1.01)  # all out of scope
        r = a.respond("what is the weather in Oslo tomorrow")
        assert r.decision.route == "handoff" and "out of scope" in r.decision.reason
    finally:
        a.thresholds.clear()
        a.thresholds.update(saved)


def test_conversations_expire_and_repeated_failure_hands_off(assistant):
    a = assistant
    first = a.respond(HATE)
    again = a.respond(HATE, first.conversation)
    assert again.conversation == first.conversation and again.note is None
    third = a.respond("I want to track my order", first.conversation)
    assert third.decision.route == "handoff" and "in a row" in third.decision.reason
    gone = a.respond("hello", "no-such-conversation")
    assert gone.conversation != "no-such-conversation" and "new conversation" in gone.note


def test_documents_are_added_without_retraining(built, tmp_path):
    import landfall
    from landfall.apps.assistant.assistant import Assistant

    manifest = json.loads((built / "manifest.json").read_text())
    members = {k: _digest(built / v) for k, v in manifest["members"].items()
               if v and not Path(v).is_absolute()}
    faq = tmp_path / "faq.md"
    faq.write_text("# Do you sell gift cards for birthdays?\nYes: gift cards from 10 to 500 "
                   "dollars, delivered by email within minutes.\n")
    out = landfall.assistant_add_docs(built, [faq])
    assert out["added"] == 1 and out["documents"] == out["before"] + 1
    a = Assistant(built, generator=False)
    hits = a.kb.search(["can I buy a birthday gift card?"], 1)[0]
    assert hits[0][0].title == "Do you sell gift cards for birthdays?"
    assert {k: _digest(built / manifest["members"][k]) for k in members} == members
    with pytest.raises(Exception, match="already there"):
        landfall.assistant_add_docs(built, [faq])


# --- the service ---------------------------------------------------------------------------

def _client(run, **serve):
    from fastapi.testclient import TestClient

    from landfall.apps.assistant.service import create_assistant_app
    from landfall.config import build_config

    base = {"threads": 1, "precision": "fp32", "max_batch_size": 4, "step_tokens": 256,
            "max_new_tokens": 32, "max_kv_mb": 16}
    return TestClient(create_assistant_app(run, build_config({"serve": {**base, **serve}})
                                           .serve))


def _events(lines) -> list:
    return [x if x == "[DONE]" else json.loads(x) for x in
            (line[6:] for line in lines if line.startswith("data: "))]


def test_the_service_answers_openai_chat_completions_with_routes(built):
    with _client(built) as c:
        wait_ready(c, timeout=120)
        models = c.get("/v1/models").json()
        assert models["object"] == "list" and models["data"][0]["id"] == built.name
        body = {"messages": [{"role": "user", "content": "I need to cancel order 00123842"}]}
        r = c.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["object"] == "chat.completion"
        assert out["choices"][0]["message"]["content"]
        lf = out["landfall"]
        assert lf["route"] in ("template", "knowledge", "generate", "handoff") and lf["reason"]
        again = c.post("/v1/chat/completions", json={**body, "conversation_id":
                                                     lf["conversation"]}).json()
        assert again["landfall"]["conversation"] == lf["conversation"]
        with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
            events = _events(s.iter_lines())
        assert events[-1] == "[DONE]" and events[0]["landfall"]["route"]
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
        assert events[-2]["landfall"]["route"] == lf["route"]
        assert text == out["choices"][0]["message"]["content"]  # greedy: the same answer
        metrics = c.get("/metrics").text
        assert "landfall_assistant_replies_total{route=" in metrics
        page = c.get("/")
        assert page.status_code == 200 and "textContent" in page.text
        from landfall.apps.assistant.assistant import ROUTES

        assert all(f".route.{r} {{ background" in page.text for r in ROUTES)  # every badge seen
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        bad = c.post("/v1/chat/completions", json={"messages": []})
        assert bad.status_code == 422


def test_a_harmful_answer_is_never_streamed_only_refused(built, tmp_path):
    """A template edited to say something hateful is withheld by the guard: the stream
    carries the refusal and not one word of the template."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(built, run, symlinks=True)
    manifest = json.loads((run / "manifest.json").read_text())
    lines = (run / "templates.jsonl").read_text().splitlines()
    lines = [json.dumps({**json.loads(x), "text": HATE}) for x in lines]
    (run / "templates.jsonl").write_text("\n".join(lines) + "\n")
    manifest["thresholds"]["template"] = 0.0
    (run / "manifest.json").write_text(json.dumps(manifest))
    with _client(run) as c:
        wait_ready(c, timeout=120)
        body = {"messages": [{"role": "user", "content": "where is my order?"}],
                "stream": True}
        with c.stream("POST", "/v1/chat/completions", json=body) as s:
            events = _events(s.iter_lines())
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
        assert "vermin" not in text and "drivers" not in text
        assert events[-2]["landfall"]["route"] == "refuse"


def test_the_api_key_guards_the_assistant(built, monkeypatch):
    monkeypatch.setenv("LANDFALL_TEST_KEY", "s3cret")
    with _client(built, api_key_env="LANDFALL_TEST_KEY") as c:
        wait_ready(c, timeout=120)
        body = {"messages": [{"role": "user", "content": "track my order"}]}
        assert c.post("/v1/chat/completions", json=body).status_code == 401
        ok = c.post("/v1/chat/completions", json=body,
                    headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


# --- eval ----------------------------------------------------------------------------------

def test_eval_scores_the_assistant_and_each_component(built, tmp_path):
    import landfall

    rows = [json.loads(x) for x in (built / "data" / "validation.jsonl").read_text(
        ).splitlines()][:6]
    rows += [{"instruction": "what's the weather like in Paris", "intent": "out_of_scope",
              "response": ""}, {"instruction": HATE, "intent": "harmful", "response": ""}]
    data = tmp_path / "eval.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = landfall.assistant_eval(built, data, tmp_path / "eval", latency_rows=2)
    saved = json.loads((tmp_path / "eval" / "eval.json").read_text())
    for key in ("rougeL", "template_share", "handoff_rate", "refusal_rate",
                "intent_accuracy", "latency"):
        assert key in saved
    assert saved["refusal_rate"]["harmful"] == 1.0
    assert set(saved["systems"]) == {"assistant", "template_only", "retrieval_only",
                                     "generator_alone", "generator_retrieval"}
    assert out["scored_rows"] == 6
    replies = (tmp_path / "eval" / "replies.jsonl").read_text().splitlines()
    assert len(replies) == 8


# --- the chat page in a real browser -------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _browser_or_skip():
    """Playwright driving Debian's Chromium; on CI (or LANDFALL_REQUIRE_BROWSER=1) a missing
    browser fails the test, elsewhere it skips saying so loudly."""
    import os
    import warnings

    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        why = "THE BROWSER TEST DID NOT RUN: missing " + " and ".join(missing)
        if os.environ.get("CI") or os.environ.get("LANDFALL_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        warnings.warn(why, stacklevel=2)
        pytest.skip(why)


class _Server:
    """The assistant app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, run: Path) -> None:
        import socket
        import threading

        import uvicorn

        from landfall.apps.assistant.service import create_assistant_app
        from landfall.config import build_config

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cfg = build_config({"serve": {"threads": 1, "precision": "fp32", "max_batch_size": 4,
                                      "step_tokens": 256, "max_new_tokens": 32,
                                      "max_kv_mb": 16}}).serve
        self.server = uvicorn.Server(uvicorn.Config(create_assistant_app(run, cfg),
                                                    host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        import time

        import httpx

        t = time.time()
        while time.time() - t < timeout:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the assistant did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_the_chat_page_streams_an_answer_and_shows_markup_as_text(built, tmp_path):
    import os
    import shutil

    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    # every confident request gets its template: a known, non-empty answer to stream
    run = tmp_path / "run"
    shutil.copytree(built, run, symlinks=True)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["thresholds"]["template"] = 0.0
    (run / "manifest.json").write_text(json.dumps(manifest))
    server = _Server(run)
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync"])
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(server.url + "/")
            page.fill("#text", "I need to cancel my order 00123842")
            page.click("#send")
            page.locator(".msg.bot [data-route]").first.wait_for(timeout=60_000)
            page.locator("#send:enabled").wait_for(timeout=60_000)
            answer = page.text_content(".msg.bot .answer")
            route = page.get_attribute(".msg.bot [data-route]", "data-route")
            assert route in ("template", "handoff") and answer.strip()  # known texts
            hostile = '<img src=x onerror="window.__pwned = 1"><b>bold</b>'
            page.fill("#text", hostile)
            page.click("#send")
            page.locator(".msg.bot [data-route]").nth(1).wait_for(timeout=60_000)
            users = page.locator(".msg.user").all_text_contents()
            assert users[-1] == hostile  # shown as text
            assert page.locator("#log img").count() == 0
            assert page.locator("#log b").count() == 0
            assert page.evaluate("() => window.__pwned") is None
            shot = os.environ.get("LANDFALL_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "chat.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
