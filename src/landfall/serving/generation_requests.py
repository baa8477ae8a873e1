"""The requests of the generation service: ``/v1/generate`` and the OpenAI chat-completions
subset, checked field by field before anything runs (422 naming the field, 413 for what is
over a limit), and turned into a prompt and its decoding settings (``Params``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from landfall.config import ServeConfig
from landfall.serving.generation import GenerationEngine, Params
from landfall.serving.http import Refused, encodable

ROLES = ("system", "user", "assistant")
MAX_STOPS = 4  # as OpenAI's API
# below this a temperature is greedy decoding in all but name, and logits / 1e-300 overflow
# float32 to inf (NaN probabilities that would fail the whole batch): decode greedily
MIN_TEMPERATURE = 0.01
MAX_STOP_CHARS = 256


class Message(BaseModel):
    role: Literal["system", "user", "assistant"] = Field(description="Who speaks the turn.")
    content: str = Field(description="The turn's text.")


class GenerateRequest(BaseModel):
    prompt: str | None = Field(None, description="A request (the user turn); or messages.")
    messages: list[Message] | None = Field(None, description="Chat turns; or prompt.")
    max_new_tokens: int | None = Field(None, description="Most new tokens (default: the "
                                       "run's generate.max_new_tokens).")
    do_sample: bool | None = Field(None, description="Sample instead of greedy decoding.")
    temperature: float | None = Field(None, description="Sampling temperature (0, 10]; "
                                       "below 0.01 decodes greedily.")
    top_p: float | None = Field(None, description="Nucleus sampling mass (0, 1].")
    top_k: int | None = Field(None, description="Sample among the k most likely (0 = all).")
    stop: list[str] | str | None = Field(None, description="Up to 4 stop strings.")
    stream: bool = Field(False, description="Server-sent events, one per new piece of text.")


class ChatRequest(BaseModel):
    model: str | None = Field(None, description="Ignored: the server serves one run.")
    messages: list[Message] = Field(description="Chat turns.")
    max_tokens: int | None = Field(None, description="Most new tokens.")
    max_completion_tokens: int | None = Field(None, description="Most new tokens (newer name).")
    temperature: float | None = Field(None, description="Below 0.01 (0) = greedy; up to 2 "
                                       "samples.")
    top_p: float | None = Field(None, description="Nucleus sampling mass (0, 1].")
    stop: list[str] | str | None = Field(None, description="Up to 4 stop strings.")
    stream: bool = Field(False, description="Server-sent chat.completion.chunk events.")


def obj(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise Refused(422, f"body: expected a JSON object, got {type(payload).__name__}",
                      "invalid")
    return payload


def _text(value: Any, where: str, cfg: ServeConfig) -> str:
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        parts = []
        for j, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise Refused(422, f"{where}[{j}]: only text parts are supported", "invalid")
            parts.append(part["text"])
        value = "".join(parts)
    if not isinstance(value, str):
        raise Refused(422, f"{where}: expected a string, got {type(value).__name__}", "invalid")
    if not encodable(value):
        raise Refused(422, f"{where}: not valid Unicode (a lone surrogate such as \\ud800)",
                      "invalid")
    if len(value) > cfg.max_chars:
        raise Refused(413, f"{where}: {len(value)} characters, the limit is {cfg.max_chars}",
                      "text_too_long")
    return value


def _messages(value: Any, cfg: ServeConfig) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise Refused(422, "messages: expected a non-empty list of {role, content}", "invalid")
    if len(value) > cfg.max_texts:
        raise Refused(413, f"messages: {len(value)} turns, the limit is {cfg.max_texts}",
                      "too_many_texts")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise Refused(422, f"messages[{i}]: expected an object with role and content",
                          "invalid")
        if m.get("role") not in ROLES:
            raise Refused(422, f"messages[{i}].role: expected one of {', '.join(ROLES)}, got "
                          f"{m.get('role')!r}", "invalid")
        out.append({"role": m["role"], "content": _text(m.get("content"),
                                                        f"messages[{i}].content", cfg)})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        raise Refused(422, "messages: no user turn with text", "invalid")
    return out


def _number(payload: dict, name: str, typ: type, lo: float, hi: float, *,
            lo_open: bool = False) -> Any:
    """``payload[name]`` checked against its type and range; None when absent or null."""
    v = payload.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and
                                                                   not isinstance(v, int)):
        raise Refused(422, f"{name}: expected {'an integer' if typ is int else 'a number'}, "
                      f"got {json.dumps(v)[:40]}", "invalid")
    if v != v or v < lo or v > hi or (lo_open and v == lo):
        bracket = "(" if lo_open else "["
        raise Refused(422, f"{name}: must be in {bracket}{lo:g}, {hi:g}], got {v}", "invalid")
    return typ(v)


def _stops(value: Any) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise Refused(422, "stop: expected a string or a list of strings", "invalid")
    if len(stops) > MAX_STOPS:
        raise Refused(422, f"stop: {len(stops)} strings, at most {MAX_STOPS}", "invalid")
    for i, s in enumerate(stops):
        if not s or len(s) > MAX_STOP_CHARS or not encodable(s):
            raise Refused(422, f"stop[{i}]: expected 1 to {MAX_STOP_CHARS} characters of valid "
                          "Unicode", "invalid")
    return stops


def _bool(payload: dict, name: str, default: bool) -> bool:
    v = payload.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise Refused(422, f"{name}: expected true or false, got {json.dumps(v)[:40]}",
                      "invalid")
    return v


UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs",
               "top_logprobs", "response_format", "logit_bias")


def chat_params(payload: dict, engine: GenerationEngine) -> tuple[list[dict], Params, bool, bool]:
    """An OpenAI chat-completions body as (messages, decoding settings, stream,
    include_usage)."""
    cfg, d = engine.cfg, engine.defaults
    for name in UNSUPPORTED:
        if payload.get(name) not in (None, False, [], {}):
            raise Refused(422, f"{name}: not supported by this server", "invalid")
    n = _number(payload, "n", int, 1, 1)
    if n not in (None, 1):
        raise Refused(422, "n: only 1 choice per request is supported", "invalid")
    if payload.get("seed") is not None:
        raise Refused(422, "seed: per-request seeds are not supported by the streaming "
                      "service (landfall generate samples with a seed)", "invalid")
    msgs = _messages(payload.get("messages"), cfg)
    most = min(d.max_new_tokens, cfg.max_new_tokens)
    new = (_number(payload, "max_completion_tokens", int, 1, cfg.max_new_tokens)
           or _number(payload, "max_tokens", int, 1, cfg.max_new_tokens) or most)
    t = _number(payload, "temperature", float, 0.0, 2.0)
    top_p = _number(payload, "top_p", float, 0.0, 1.0, lo_open=True)
    greedy = (t < MIN_TEMPERATURE) if t is not None else not d.do_sample
    params = Params(max_new_tokens=new, greedy=greedy,
                    temperature=t if t else d.temperature,
                    top_p=top_p if top_p is not None else d.top_p, top_k=d.top_k,
                    stop=_stops(payload.get("stop")))
    opts = payload.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise Refused(422, "stream_options: expected an object", "invalid")
    return msgs, params, _bool(payload, "stream", False), _bool(opts, "include_usage", False)


def generate_params(payload: dict, engine: GenerationEngine) -> tuple[Any, Params, bool, bool]:
    """A ``/v1/generate`` body as (prompt or messages, decoding settings, stream, False)."""
    cfg, d = engine.cfg, engine.defaults
    has_prompt, has_msgs = payload.get("prompt") is not None, payload.get("messages") is not None
    if has_prompt == has_msgs:
        raise Refused(422, "prompt: give a prompt or messages (one of them)", "invalid")
    if has_prompt:
        request = _text(payload["prompt"], "prompt", cfg)
        if not request.strip():
            raise Refused(422, "prompt: empty", "invalid")
    else:
        request = _messages(payload["messages"], cfg)
    new = _number(payload, "max_new_tokens", int, 1, cfg.max_new_tokens) or \
        min(d.max_new_tokens, cfg.max_new_tokens)
    t = _number(payload, "temperature", float, 0.0, 10.0, lo_open=True)
    top_p = _number(payload, "top_p", float, 0.0, 1.0, lo_open=True)
    top_k = _number(payload, "top_k", int, 0, 1_000_000)
    sample = _bool(payload, "do_sample", d.do_sample) and (t is None or t >= MIN_TEMPERATURE)
    params = Params(max_new_tokens=new, greedy=not sample,
                    temperature=t or d.temperature, top_p=top_p or d.top_p,
                    top_k=d.top_k if top_k is None else top_k,
                    stop=_stops(payload.get("stop")))
    return request, params, _bool(payload, "stream", False), False
