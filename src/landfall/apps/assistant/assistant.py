"""The assistant at answer time: guard, classify, route, answer, explain.

Routes (every reply carries its route, the reason, the intent and its score, and the
passages used):

* ``refuse``: the guard finds the user's message harmful, or the answer would be;
* ``handoff``: out of scope (the classifier's ``out_of_scope`` class, and no passage of the
  knowledge base close enough), an explicit request for a person, nothing in the knowledge
  base to answer from, or repeated failure in the conversation;
* ``template``: a confident in-scope intent gets its vetted template, slots filled, unless
  most of the ``consensus_k`` best passages are of topics the classifier was not
  trained on (FAQ entries added later): then the request is a new question, answered as
  below (route knowledge or generate);
* ``knowledge``: otherwise, when the ``consensus_k`` best passages agree (their most
  central answer's mean ROUGE-L with the others reaches the ``knowledge`` threshold), that
  written answer of the knowledge base answers, slots filled: a new FAQ entry answers its
  question as the business wrote it (``consensus_k``: ``retrieval.consensus_k``, or the
  count ``build`` chose on the tuning rows);
* ``generate``: anything else goes to retrieval + the grounded generator.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landfall.apps.assistant import templates as T
from landfall.apps.assistant.conversation import Conversation, Conversations, Turn
from landfall.apps.assistant.data import OOS
from landfall.apps.assistant.knowledge import KnowledgeBase
from landfall.apps.assistant.manifest import Manifest
from landfall.apps.assistant.prompts import grounded_prompt, split_sources
from landfall.apps.assistant.slots import EntityFinder, fill, read_profile

ROUTES = ("template", "knowledge", "generate", "handoff", "refuse")
EARLIER_CONSENSUS_K = 5  # runs built before build chose the count used this many passages


@dataclass
class Decision:
    route: str
    reason: str
    intent: str | None = None
    score: float = 0.0  # the intent's probability
    oos_score: float = 0.0  # the out_of_scope class's probability
    passages: list[dict] = field(default_factory=list)  # retrieved (id, title, cosine)
    sources: list[dict] = field(default_factory=list)  # the passages the answer is from
    prompt: str | None = None  # the generator's user turn (route generate)
    text: str | None = None  # the answer, when known before generation
    slots_left: list[str] = field(default_factory=list)
    guard: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Reply:
    text: str
    decision: Decision
    conversation: str
    note: str | None = None
    sources: list[dict] = field(default_factory=list)
    latency_s: float = 0.0

    def to_json(self) -> dict:
        d = self.decision
        return {"route": d.route, "reason": d.reason, "intent": d.intent,
                "score": round(d.score, 4), "oos_score": round(d.oos_score, 4),
                "sources": self.sources, "passages": d.passages, "slots_left": d.slots_left,
                "guard": d.guard, "conversation": self.conversation, "note": self.note,
                "timings_ms": {k: round(v * 1000, 1) for k, v in d.timings.items()}}


class Assistant:
    """A built assistant run, loaded: members, templates, knowledge base, thresholds."""

    def __init__(self, run_dir: str | Path, *, generator: bool = True,
                 fill_profile: bool = True, device: str | None = None) -> None:
        from landfall.inference.embed import Embedder
        from landfall.inference.loading import load_run

        self.run_dir = Path(run_dir)
        self.manifest = Manifest.read(self.run_dir)
        self.cfg = self.manifest.config()
        m = self.manifest
        self.classifier = load_run(m.member_path("classifier"), device=device)
        self.labels = list(self.classifier.labels)
        self.intents = {x for x in self.labels if x != OOS}
        self.templates = T.read(self.run_dir / T.FILE, self.intents)
        self.embedder = Embedder(self.cfg.retrieval.embedder)
        r = self.cfg.retrieval
        self.kb = KnowledgeBase.load(self.run_dir / "knowledge", self.embedder,
                                     dense_weight=r.dense_weight, sparse_weight=r.sparse_weight)
        self.finder = EntityFinder(m.entities.get("gazetteer", {}))
        profile = self.cfg.assistant.profile
        self.profile = read_profile(self.run_dir / "profile.toml") if (
            fill_profile and profile and (self.run_dir / "profile.toml").is_file()) else {}
        self.thresholds = m.thresholds
        k = self.cfg.retrieval.consensus_k
        self.consensus_k = int(self.thresholds.get("consensus_k", k if k >= 0
                                                   else EARLIER_CONSENSUS_K))
        self.guard = self._load_guard(device) if m.members.get("guard") else None
        self.generator = None
        if generator:
            from landfall.inference.loading import load_generation_run

            self.generator = load_generation_run(m.member_path("generator"), device=device)
        c = self.cfg.conversation
        self.conversations = Conversations(c.max_conversations, c.ttl_s, c.history_turns)
        self.handoff_intents = {x.strip() for x in
                                self.cfg.routing.handoff_intents.split(",") if x.strip()}

    def _load_guard(self, device):
        from landfall.inference.loading import load_run
        from landfall.safety.guard import Guard

        g = self.cfg.guardrails
        pred = load_run(self.manifest.member_path("guard"), device=device)
        return {"input": Guard(pred, _names(g.input_classes), g.input_threshold, "guard"),
                "output": Guard(pred, _names(g.output_classes), g.output_threshold, "guard")}

    # -- deciding ----------------------------------------------------------------------
    def check(self, text: str, side: str) -> dict | None:
        """The guard's verdict on a user message (side "input") or an answer ("output")."""
        if self.guard is None:
            return None
        return self.guard[side].check([text])[0].to_json()

    def classify(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best in-scope intent id, its probability, the out_of_scope probability)."""
        probs = self.classifier.predict(texts).probs
        oos = probs[:, self.labels.index(OOS)] if OOS in self.labels else np.zeros(len(texts))
        inscope = probs.copy()
        if OOS in self.labels:
            inscope[:, self.labels.index(OOS)] = -1
        best = inscope.argmax(1)
        return best, inscope[np.arange(len(texts)), best], oos

    def decide(self, message: str, conv: Conversation | None = None) -> Decision:
        t = {}
        t0 = time.perf_counter()
        if conv is not None and conv.failures >= self.cfg.conversation.failures_before_handoff:
            return Decision("handoff", f"{conv.failures} answers in a row did not help",
                            text=self.cfg.assistant.handoff_message)
        verdict = self.check(message, "input")
        t["guard_in"] = time.perf_counter() - t0
        if verdict and verdict["harmful"]:
            return Decision("refuse", f"the guard finds the message harmful "
                            f"({verdict['label']}, {verdict['score']:.2f})",
                            text=self.cfg.assistant.refusal_message, guard=verdict, timings=t)
        t1 = time.perf_counter()
        best, score, oos = self.classify([message])
        intent, p, p_oos = self.labels[int(best[0])], float(score[0]), float(oos[0])
        history = conv.turns if conv is not None else []
        if history and p < self.thresholds["template"]:  # a follow-up: read it in context
            b2, s2, o2 = self.classify([f"{history[-1].user} {message}"])
            if float(s2[0]) > p:
                intent, p, p_oos = self.labels[int(b2[0])], float(s2[0]), float(o2[0])
        t["classify"] = time.perf_counter() - t1
        d = Decision("generate", "", intent, p, p_oos, timings=t, guard=verdict)
        if p >= self.thresholds["template"] and intent in self.handoff_intents:
            d.route, d.reason = "handoff", f"asked for a person (intent {intent})"
            d.text = self.cfg.assistant.handoff_message
            return d
        r = self.cfg.retrieval
        confident = p >= self.thresholds["template"] and bool(self.templates.get(intent))
        why = f"intent {intent} at {p:.2f} < template threshold {self.thresholds['template']:.2f}"
        hits = None
        if confident and self.cfg.routing.new_topics_overrule:
            hits = self._retrieve(message, t)
            new = self.new_topic_majority(hits[:self.consensus_k])
            if new:  # a new topic: the knowledge base answers, or the generator composes
                confident = False
                why = (f"intent {intent} at {p:.2f} >= template threshold "
                       f"{self.thresholds['template']:.2f}, but {new} of the "
                       f"{self.consensus_k} best passages are of topics the classifier was "
                       "not trained on")
        if confident:
            tpl = self.templates[intent][0]
            d.route = "template"
            d.reason = (f"intent {intent} at {p:.2f} >= template threshold "
                        f"{self.thresholds['template']:.2f}")
            d.text, d.slots_left = fill(tpl.text, self.finder.find(message), self.profile)
            return d
        if hits is None:
            hits = self._retrieve(message, t)
        top = max((h.dense for _, h in hits), default=-1.0)
        d.passages = [_passage(doc, h) for doc, h in hits[:r.top_k]]
        if p_oos >= self.thresholds["oos"] and top < self.thresholds["kb_cosine"]:
            d.route, d.text = "handoff", self.cfg.assistant.handoff_message
            d.reason = (f"out of scope ({p_oos:.2f} >= {self.thresholds['oos']:.2f}) and no "
                        f"passage within cosine {self.thresholds['kb_cosine']:.2f}")
            return d
        if top < r.min_cosine:
            d.route, d.text = "handoff", self.cfg.assistant.dont_know_message
            d.reason = f"no passage close enough (best cosine {top:.2f} < {r.min_cosine:.2f})"
            return d
        i, agree, agreed = self._consensus(hits)
        if agreed and agree >= self.thresholds["knowledge"]:
            return self._knowledge(d, message, agreed, i, agree, why)
        hits = hits[:r.top_k]
        turns = [(x.user, x.assistant) for x in history[-self.cfg.conversation.history_turns:]]
        d.prompt = grounded_prompt(message, [(doc.title, doc.text) for doc, _ in hits],
                                   r.passage_words, turns if self.cfg.conversation.history_turns
                                   else ())
        d.reason = f"{why}: retrieval + generation"
        return d

    def _retrieve(self, message: str, t: dict) -> list:
        t0 = time.perf_counter()
        r = self.cfg.retrieval
        hits = self.kb.search([message], max(r.top_k, self.consensus_k))[0]
        t["retrieve"] = time.perf_counter() - t0
        return hits

    def new_topic_majority(self, passages: list) -> int:
        """How many of ``passages`` (document, hit) are of intents the classifier does not
        know (added later, or without an intent) when they are most of them, else 0: the
        condition under which the knowledge base (or the generator) overrules a confident
        template."""
        new = sum(doc.intent not in self.labels for doc, _ in passages)
        return new if len(passages) > 1 and 2 * new > len(passages) else 0

    def _consensus(self, hits: list) -> tuple[int, float, list]:
        """(the most central of the ``consensus_k`` best passages, its agreement, those
        passages); no passages when the knowledge route is off."""
        k = self.consensus_k
        if k < 2 or self.thresholds.get("knowledge", 1.01) > 1.0:  # off, or a run built
            return 0, 0.0, []  # before the route existed
        agreed = hits[:k]
        i, agree = T.agreement([doc.text for doc, _ in agreed])
        return i, agree, agreed if len(agreed) > 1 else []

    def _knowledge(self, d: Decision, message: str, agreed: list, i: int, agree: float,
                   why: str) -> Decision:
        """Route ``knowledge``: passage ``i`` of the agreeing passages answers as written."""
        doc = agreed[i][0]
        d.route, d.passages = "knowledge", [_passage(doc, x) for doc, x in agreed]
        d.sources = [d.passages[i]]
        d.reason = (f"{why}; the {len(agreed)} best passages agree (ROUGE-L {agree:.2f} >= "
                    f"{self.thresholds['knowledge']:.2f}): passage [{i + 1}] answers")
        d.text, d.slots_left = fill(doc.text, self.finder.find(message), self.profile)
        return d

    # -- answering ---------------------------------------------------------------------
    def finish(self, d: Decision, raw: str, message: str) -> tuple[str, list[dict]]:
        """The generator's raw answer -> (what the user sees, the passages it names)."""
        used, body = split_sources(raw)
        sources = [d.passages[i - 1] for i in (used or []) if 0 < i <= len(d.passages)]
        if used == [] and _says_no(body):
            d.route, d.reason = "handoff", "the generator found no answer in the passages"
            return self.cfg.assistant.dont_know_message, []
        text, d.slots_left = fill(body.strip(), self.finder.find(message), self.profile)
        return text, sources

    def generate_text(self, prompts: list[str], max_new_tokens: int | None = None) -> list[str]:
        import dataclasses

        gen = self.manifest.generator_settings()
        if max_new_tokens:
            gen = dataclasses.replace(gen, max_new_tokens=max_new_tokens)
        return [g.text for g in self.generator.generate(prompts, gen)]

    def respond(self, message: str, conversation: str | None = None) -> Reply:
        """One turn, start to end (the service streams the same steps)."""
        t0 = time.perf_counter()
        conv, note = self.conversations.get(conversation)
        d = self.decide(message, conv)
        sources: list[dict] = []
        if d.route == "generate":
            t1 = time.perf_counter()
            raw = self.generate_text([d.prompt])[0]
            d.timings["generate"] = time.perf_counter() - t1
            d.text, sources = self.finish(d, raw, message)
        text = d.text or ""
        sources = sources or d.sources
        if d.route in ("template", "knowledge", "generate"):
            t2 = time.perf_counter()
            verdict = self.check(text, "output")
            d.timings["guard_out"] = time.perf_counter() - t2
            if verdict and verdict["harmful"]:
                d.route, d.guard = "refuse", verdict
                d.reason = f"the answer was withheld: the guard finds it harmful " \
                           f"({verdict['label']}, {verdict['score']:.2f})"
                text, sources = self.cfg.assistant.refusal_message, []
        reply = Reply(text, d, conv.id, note, sources, time.perf_counter() - t0)
        self.conversations.add(conv, Turn(message, text, d.route), failed=self.failed(d))
        return reply

    @staticmethod
    def failed(d: Decision) -> bool:
        """An answer that did not help: a refusal, or a hand-off for want of an answer (not
        an out-of-scope one, nor a request for a person)."""
        return d.route == "refuse" or (d.route == "handoff" and d.reason.startswith(
            ("no passage close enough", "the generator found no answer")))

    def pieces(self, text: str) -> Iterator[str]:
        """A known answer (template, hand-off) as the pieces a stream sends: words."""
        words = text.split(" ")
        for i in range(0, len(words), 4):
            yield " ".join(words[i:i + 4]) + (" " if i + 4 < len(words) else "")


def _passage(doc, hit) -> dict:
    return {"id": doc.id, "title": doc.title, "intent": doc.intent,
            "cosine": round(hit.dense, 4)}


def _names(csv: str) -> list[str]:
    return [x.strip() for x in csv.split(",") if x.strip()]


def _says_no(body: str) -> bool:
    low = body.lower()
    return any(k in low for k in ("could not find", "don't know", "do not know",
                                  "not in our help articles"))
