"""Conversations in the model's own chat template, split into prompt and response tokens.

The prompt is the template up to the assistant's turn (``add_generation_prompt``); the
response is what the template puts after it for the written answer, end-of-turn token
included, so that a trained model learns to stop.
"""

from __future__ import annotations

from collections.abc import Sequence


def messages(request: str | Sequence[dict], system: str) -> list[dict]:
    """A request (text, or chat messages) as chat messages, with the system turn first."""
    if isinstance(request, str):
        turns = [{"role": "user", "content": request}]
    else:
        turns = [dict(m) for m in request]
    if system and not any(m.get("role") == "system" for m in turns):
        turns = [{"role": "system", "content": system}, *turns]
    return turns


def prompt_text(tokenizer, request: str | Sequence[dict], system: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages(request, system), tokenize=False,
                                             add_generation_prompt=True)
    # a tokenizer without a template (tiny test models): a plain, fixed layout
    lines = [f"{m['role']}: {m['content']}" for m in messages(request, system)]
    return "\n".join(lines) + "\nassistant: "


def response_text(tokenizer, request: str, response: str, system: str) -> str:
    """What follows the prompt in the full conversation (answer + end-of-turn)."""
    prompt = prompt_text(tokenizer, request, system)
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(
            [*messages(request, system), {"role": "assistant", "content": response}],
            tokenize=False)
        if full.startswith(prompt):
            return full[len(prompt):]
    return response + (tokenizer.eos_token or "")


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end a reply: EOS and the template's end-of-turn token."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for tok in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(ids)
