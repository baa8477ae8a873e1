"""Instruction/response data: read, check, split (stratified), format, tokenise.

Every record needs a non-empty request and response; a missing or empty one, or a request
longer than ``chat.max_prompt_tokens``, is refused naming the file, the line and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from landfall.config import Config, expand_env
from landfall.data.readers import Example, read_examples
from landfall.data.splits import stratified_split
from landfall.errors import ConfigError, DataError
from landfall.tasks.causal_lm.chat import encode, prompt_text, response_text
from landfall.tasks.causal_lm.config import ChatConfig

IGNORE = -100  # label of prompt and padding positions: no loss there


@dataclass
class Record:
    request: str
    response: str
    category: str | None
    entity: str | None
    stratum: str | None
    line: int
    source: str


@dataclass
class Tokenised:
    ids: list[int]  # prompt + response
    prompt_len: int  # positions [0, prompt_len) carry no loss


@dataclass
class ChatData:
    train: list[Record]
    validation: list[Record]
    train_items: list[Tokenised]
    validation_items: list[Tokenised]
    train_source: str
    validation_source: str


def _str(value) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() and text.lower() != "nan" else None


def read_records(source: str, chat: ChatConfig, *, require_response: bool = True,
                 limit: int | None = None) -> list[Record]:
    """Records of a JSONL/CSV/Parquet file; the request is the text field."""
    wanted = tuple(f for f in (chat.response_field, chat.category_field, chat.entity_field,
                               chat.stratify_field) if f)
    examples = read_examples(source, text_field=chat.request_field,
                             label_field=chat.stratify_field or "\0none",
                             require_labels=False, extra_fields=wanted, limit=limit)
    out = []
    for ex in examples:
        extra = ex.extra or {}
        response = extra.get(chat.response_field)
        if require_response:
            if response is None:
                raise DataError("missing response field", path=ex.source, line=ex.line,
                                field=chat.response_field)
            if not isinstance(response, str) or not response.strip():
                raise DataError("response is empty", path=ex.source, line=ex.line,
                                field=chat.response_field)
        out.append(Record(ex.text, response or "", _str(extra.get(chat.category_field)),
                          _str(extra.get(chat.entity_field)), ex.label, ex.line, ex.source))
    return out


def _as_examples(records: list[Record], stratify: bool) -> list[Example]:
    return [Example(r.request, r.stratum if stratify else None, i, r.source)
            for i, r in enumerate(records)]


def split_records(records: list[Record], fraction: float, seed: int):
    """Seeded split, stratified by ``chat.stratify_field`` where each side can hold every
    stratum (a smaller sample is drawn at random)."""
    strata = len({r.stratum for r in records})
    small = min(math.ceil(fraction * len(records)), len(records) - math.ceil(
        fraction * len(records)))
    train, val = stratified_split(_as_examples(records, small >= strata), fraction, seed)
    return [records[e.line] for e in train], [records[e.line] for e in val]


def tokenise(records: list[Record], tokenizer, chat: ChatConfig) -> list[Tokenised]:
    items = []
    for r in records:
        prompt = encode(tokenizer, prompt_text(tokenizer, r.request, chat.system_prompt))
        if len(prompt) > chat.max_prompt_tokens:
            raise DataError(f"request is {len(prompt)} tokens with the chat template, more "
                            f"than chat.max_prompt_tokens={chat.max_prompt_tokens}",
                            path=r.source, line=r.line, field=chat.request_field)
        answer = encode(tokenizer, response_text(tokenizer, r.request, r.response,
                                                 chat.system_prompt))
        items.append(Tokenised(prompt + answer[: chat.max_response_tokens], len(prompt)))
    return items


def prepare_chat(cfg: Config, tokenizer) -> ChatData:
    if not cfg.data.train:
        raise ConfigError("data.train is empty: name a file of requests and responses")
    source = expand_env(cfg.data.train, "data.train")
    records = read_records(source, cfg.chat)
    seed = cfg.data.split_seed_for(cfg.train.seed)  # data.split_seed, else train.seed
    if cfg.data.validation:
        val_source = expand_env(cfg.data.validation, "data.validation")
        val = read_records(val_source, cfg.chat)
        train = records
    else:
        train, val = split_records(records, cfg.data.validation_fraction, seed)
        by = f", stratified by {cfg.chat.stratify_field}" if cfg.chat.stratify_field else ""
        val_source = (f"{source} (seeded {cfg.data.validation_fraction:.0%} split{by}, "
                      f"seed {seed})")
    if cfg.data.limit and cfg.data.limit < len(train):
        train = split_records(train, cfg.data.limit / len(train), seed)[1]
    if cfg.data.validation_limit and cfg.data.validation_limit < len(val):
        val = split_records(val, cfg.data.validation_limit / len(val), seed)[1]
    return ChatData(train, val, tokenise(train, tokenizer, cfg.chat),
                    tokenise(val, tokenizer, cfg.chat), source, val_source)
