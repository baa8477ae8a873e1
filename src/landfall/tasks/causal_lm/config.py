"""The causal-LM task's config sections: ``[chat]`` (the data and its template) and
``[generate]`` (decoding)."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section


@dataclass
class ChatConfig:
    request_field: str = _f("instruction", "causal_lm: the request (user turn) field/column.")
    response_field: str = _f("response", "causal_lm: the written answer (assistant turn).")
    stratify_field: str = _f(
        "intent", "causal_lm: field the validation split is stratified by (empty = none)."
    )
    category_field: str = _f(
        "category", "causal_lm: field that evaluation tables break down by (empty = none)."
    )
    entity_field: str = _f(
        "entity_value",
        "causal_lm: field holding an entity tagged in the request; evaluation reports the share "
        "of responses that carry it (empty = none).",
    )
    system_prompt: str = _f(
        "You are a helpful customer-support assistant.",
        "causal_lm: system turn of every conversation (empty = none).",
    )
    max_prompt_tokens: int = _f(
        256, "causal_lm: longest request (chat template included) accepted, in tokens.", ge=8
    )
    max_response_tokens: int = _f(
        384, "causal_lm: training responses are cut to this many tokens.", ge=8
    )


@dataclass
class GenerateConfig:
    max_new_tokens: int = _f(256, "Most tokens generated per prompt.", ge=1, le=8192)
    do_sample: bool = _f(False, "Sample (temperature, top_p, top_k) instead of greedy decoding.")
    temperature: float = _f(0.7, "Sampling temperature.", gt=0.0, le=10.0)
    top_p: float = _f(0.95, "Nucleus sampling: keep the smallest set of tokens with this "
                      "probability mass.", gt=0.0, le=1.0)
    top_k: int = _f(50, "Sample among the k most likely tokens (0 = no limit).", ge=0)
    seed: int = _f(0, "Seed of sampling: the same seed gives the same text.")
    stop: str = _f("", "Stop strings, separated by '|' (the text is cut before the first).")
    batch_size: int = _f(16, "Prompts decoded together (left-padded, KV cache).", ge=1)
    repetition_penalty: float = _f(1.0, "Penalty on tokens already generated (1 = none).",
                                   ge=1.0, le=3.0)


register_section("chat", ChatConfig, task="causal_lm")
register_section("generate", GenerateConfig, task="causal_lm")
