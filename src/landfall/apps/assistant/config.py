"""The assistant's config sections (task ``assistant``): ``[assistant]`` (data and messages),
``[members]`` (the runs it composes), ``[retrieval]``, ``[routing]``, ``[conversation]`` and
``[guardrails]``. The same names work in ``examples/bitext-assistant.toml`` and as ``--set``.
"""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section

HANDOFF = ("I'm passing you to a member of our support team, who will pick up this "
           "conversation shortly.")
REFUSAL = "I can't help with that message. Please keep the conversation respectful."
DONT_KNOW = ("I'm sorry, I could not find the answer to that in our help articles. "
             "Let me pass you to a member of our support team.")


@dataclass
class AssistantSection:
    data: str = _f("${LANDFALL_DATA}/bitext-support/train.csv",
                   "Requests with written responses (CSV/JSONL/Parquet): the members' training "
                   "data, the templates' source and the default knowledge base.")
    request_field: str = _f("instruction", "The request (user message) field.")
    response_field: str = _f("response", "The written answer field.")
    intent_field: str = _f("intent", "The intent label field.")
    entity_type_field: str = _f("entity_type", "Field naming the type of the entity tagged in "
                                "the request (empty = none).")
    entity_value_field: str = _f("entity_value", "Field holding the tagged entity's value.")
    validation_fraction: float = _f(0.1, "Share of the data held out as validation rows "
                                    "(reported by `assistant eval`), stratified by intent.",
                                    gt=0.0, lt=0.5)
    tune_fraction: float = _f(0.1, "Share held out for choosing the routing thresholds (never "
                              "the reported rows).", gt=0.0, lt=0.5)
    seed: int = _f(42, "Seed of the splits and the members' training.")
    holdout_intents: str = _f("", "Comma-separated intents kept out of the classifier, the "
                              "templates and the generator; their pairs go to the knowledge "
                              "base only (new questions answered without retraining).")
    profile: str = _f("", "Business profile (TOML or JSON: slot name = value, e.g. "
                      "\"Website Name\" = \"shop.example\") that fills {{Slot}} placeholders; "
                      "empty = none.")
    templates_per_intent: int = _f(1, "Answer templates mined per intent (the most central "
                                   "responses, see template_centrality).", ge=1, le=10)
    template_centrality: str = _f("rougeL", "How the most central response of an intent is "
                                  "found: 'rougeL' (the highest mean ROUGE-L with the intent's "
                                  "other responses: the typical wording) or 'embedding' (the "
                                  "nearest the intent's mean MiniLM embedding: the typical "
                                  "meaning).", choices=("rougeL", "embedding"))
    handoff_message: str = _f(HANDOFF, "What the assistant says when it hands off to a person.")
    refusal_message: str = _f(REFUSAL, "What the assistant says when the guard refuses.")
    dont_know_message: str = _f(DONT_KNOW, "What the assistant says when retrieval finds "
                                "nothing it can answer from.")


@dataclass
class MembersSection:
    classifier: str = _f("examples/bitext-assistant-intents.toml",
                         "Intent classifier: a classification run directory, or a preset "
                         "(.toml) that `assistant build` trains.")
    generator: str = _f("examples/bitext-assistant-generator.toml",
                        "Grounded generator: a causal_lm run directory, or a preset that "
                        "`assistant build` trains on prompts with retrieved passages.")
    guard: str = _f("", "Harmful-content guard: a classifier run (e.g. Davidson), a preset, or "
                    "empty for none (then the assistant says it runs unguarded).")
    oos_data: str = _f("${LANDFALL_DATA}/clinc150/train.jsonl",
                       "Out-of-scope training texts for the classifier's `out_of_scope` class "
                       "(CLINC150 train: its oos queries and intents outside customer "
                       "support); empty = no such class.")
    oos_per_intent: int = _f(10, "CLINC150 texts taken per out-of-domain intent.", ge=0)
    generator_limit: int = _f(1000, "Training pairs for the generator (a seeded stratified "
                              "sample; 0 = all).", ge=0)
    set: str = _f("", "Extra `section.field=value` overrides for every member trained by the "
                  "build, separated by ';'.")


@dataclass
class RetrievalSection:
    embedder: str = _f("minilm", "Sentence encoder for the dense index.")
    top_k: int = _f(2, "Passages given to the generator.", ge=1, le=8)
    passage_words: int = _f(90, "Each passage's answer is cut to this many words in the "
                            "generator's prompt.", ge=10)
    dense_weight: float = _f(1.0, "Weight of the dense ranking in reciprocal rank fusion.",
                             ge=0.0)
    sparse_weight: float = _f(1.0, "Weight of the BM25 ranking in reciprocal rank fusion.",
                              ge=0.0)
    min_cosine: float = _f(0.35, "Below this cosine with the best passage, the generator is "
                           "not asked: the assistant says it does not know.", ge=-1.0, le=1.0)
    consensus_k: int = _f(-1, "Passages whose answers are compared for agreement: when they "
                          "agree (routing.knowledge_threshold), the most central of them "
                          "answers as written (route 'knowledge'); 0 or 1 = never, the "
                          "generator always composes; -1 = chosen by build on the tuning "
                          "rows among retrieval.consensus_candidates.", ge=-1, le=40)
    consensus_candidates: str = _f("3,5,8,12,20", "build (retrieval.consensus_k = -1): the "
                                   "passage counts tried; the one whose most central answer "
                                   "scores the highest ROUGE-L against the references of the "
                                   "tuning rows that no template answers is kept.")


@dataclass
class RoutingSection:
    template_threshold: float = _f(-1.0, "Intent probability at or above which the template "
                                   "answers (-1 = chosen on the tuning rows by build).",
                                   ge=-1.0, le=1.0)
    oos_threshold: float = _f(-1.0, "Out-of-scope probability at or above which the request "
                              "is handed off (-1 = chosen by build).", ge=-1.0, le=1.0)
    target_template_precision: float = _f(0.99, "build: the lowest template threshold whose "
                                          "routed tuning rows are this accurate (new "
                                          "questions among them count as wrong).", gt=0.0,
                                          le=1.0)
    knowledge_threshold: float = _f(-1.0, "Agreement (mean ROUGE-L of the most central of the "
                                    "retrieval.consensus_k passages with the others) at or "
                                    "above which that passage answers as written (-1 = chosen "
                                    "on the tuning rows by build).", ge=-1.0, le=1.0)
    target_knowledge_precision: float = _f(0.9, "build: the lowest knowledge threshold at "
                                           "which the passage that answers is of the "
                                           "request's own intent this often, on the tuning "
                                           "rows that reach retrieval.", gt=0.0, le=1.0)
    target_inscope_handoff: float = _f(0.02, "build: the oos threshold hands off at most this "
                                       "share of in-scope tuning rows.", ge=0.0, lt=1.0)
    new_topics_overrule: bool = _f(True, "A confident template gives way when most of the "
                                   "consensus_k best passages are of intents the classifier "
                                   "was not trained on (documents added later, or without an "
                                   "intent): the request is a new question, answered by the "
                                   "knowledge base or the generator.")
    handoff_intents: str = _f("contact_human_agent", "Intents that are explicit requests for a "
                              "person: handed off.")


@dataclass
class ConversationSection:
    history_turns: int = _f(4, "Earlier turns given to the generator and the classifier.",
                            ge=0, le=32)
    max_conversations: int = _f(10_000, "Conversations kept in memory (least recently used "
                                "dropped).", ge=1)
    ttl_s: float = _f(1800.0, "A conversation idle this long expires.", gt=0.0)
    failures_before_handoff: int = _f(2, "Consecutive failed answers (don't know, refusal) "
                                      "after which the next message is handed off.", ge=1)


@dataclass
class GuardrailsSection:
    input_classes: str = _f("hate_speech", "Guard classes that make a USER message harmful "
                            "(a customer who swears still gets help).")
    output_classes: str = _f("hate_speech,offensive_language", "Guard classes that make an "
                             "ANSWER harmful (an assistant never insults or swears).")
    input_threshold: float = _f(0.5, "Guard probability at which a user message is refused.",
                                gt=0.0, le=1.0)
    output_threshold: float = _f(0.5, "Guard probability at which an answer is withheld.",
                                 gt=0.0, le=1.0)
    redact_pii: bool = _f(True, "Redact PII (Presidio) in logs and transcripts.")
    transcript: bool = _f(True, "Write transcripts (redacted) to the run's transcripts/ "
                          "folder when serving.")


for _name, _cls in (("assistant", AssistantSection), ("members", MembersSection),
                    ("retrieval", RetrievalSection), ("routing", RoutingSection),
                    ("conversation", ConversationSection), ("guardrails", GuardrailsSection)):
    register_section(_name, _cls, task="assistant")
