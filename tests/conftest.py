"""Shared fixtures: a tiny randomly initialised BERT and real slices of ../shared/data."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

os.environ.setdefault("LANDFALL_PROGRESS", "0")


def need_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Token caches and unpacked models go to a temporary folder, not ~/.cache."""
    os.environ["LANDFALL_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's real WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from landfall.hub import MINILM, resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(MINILM))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    out = tmp_path_factory.mktemp("tiny-bert")
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def imdb_rows(n_per_class: int) -> list[dict]:
    """The first ``n_per_class`` reviews of each label from the real IMDb file."""
    need_data()
    rows, counts = [], {"pos": 0, "neg": 0}
    with gzip.open(DATA / "imdb" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if counts[row["label"]] < n_per_class:
                counts[row["label"]] += 1
                rows.append(row)
            if min(counts.values()) >= n_per_class:
                break
    return rows


@pytest.fixture(scope="session")
def imdb_small(tmp_path_factory) -> Path:
    """96 real IMDb reviews (48 per class), shuffled, as JSONL."""
    import random

    rows = imdb_rows(48)
    random.Random(0).shuffle(rows)
    path = tmp_path_factory.mktemp("imdb") / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def wait_ready(client, timeout: float = 60) -> None:
    """Poll a test client's /readyz until the service is ready; fail with its last answer
    after ``timeout`` seconds."""
    import time

    t = time.time()
    while (r := client.get("/readyz")).status_code != 200:
        assert time.time() - t < timeout, r.text
        time.sleep(0.05)


def tiny_config(model: Path, data: Path, **sections) -> dict:
    """A config dict for a fast run of the tiny model."""
    cfg = {
        "model": {"name": str(model)},
        "data": {"train": str(data), "validation_fraction": 0.25, "max_length": 64,
                 "truncation": "head+tail", "head_tokens": 32},
        "train": {"epochs": 2.0, "batch_size": 8, "lr": 1e-3, "eval_every": 4,
                  "checkpoint_every": 3, "patience": 0, "eval_batch_size": 16, "threads": 1},
        "report": {"baseline": True, "plots": True},
    }
    for sec, values in sections.items():
        cfg[sec].update(values)
    return cfg


def sliding_run(out: Path, model_dir: Path, seed: int) -> Path:
    """A run directory at ``out`` around a random 2-label tiny BERT (``model_dir``'s weights,
    a fresh head seeded by ``seed``), with sliding windows of 32 tokens."""
    import tomli_w
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from landfall.config import build_config

    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    model.save_pretrained(out / "model")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out / "model")
    raw = tiny_config(model_dir, Path("unused.jsonl"))
    raw["data"].update(max_length=32, truncation="sliding", stride=8, max_windows=0)
    (out / "landfall.toml").write_text(tomli_w.dumps(build_config(raw).to_dict()))
    return out


CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def bitext_rows(n: int) -> list[dict]:
    """The first ``n`` rows of the real Bitext customer-support file."""
    import csv

    need_data()
    with open(DATA / "bitext-support" / "train.csv", encoding="utf-8", newline="") as fh:
        return [row for _, row in zip(range(n), csv.DictReader(fh), strict=False)]


@pytest.fixture(scope="session")
def bitext_small(tmp_path_factory) -> Path:
    """60 real Bitext rows (requests, responses, intents, categories, entities) as CSV."""
    import csv

    rows = bitext_rows(60)
    path = tmp_path_factory.mktemp("bitext") / "small.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide Llama with random weights and a byte-level BPE tokenizer (ChatML
    template, as SmolLM2's) trained here on Bitext text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rows = bitext_rows(300)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        [r["instruction"] for r in rows] + [r["response"] for r in rows],
        trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                            "<|im_end|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                  bos_token="<|im_start|>", pad_token="<|endoftext|>",
                                  unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("tiny-lm")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_lm_config(model: Path, data: Path, **sections) -> dict:
    """A config dict for a fast causal-LM run of the tiny decoder on Bitext rows."""
    cfg = {
        "task": {"name": "causal_lm"},
        "model": {"name": str(model)},
        "data": {"train": str(data), "validation_fraction": 0.2},
        "chat": {"max_response_tokens": 48, "max_prompt_tokens": 96},
        "train": {"epochs": 2.0, "batch_size": 8, "lr": 3e-3, "eval_every": 3,
                  "checkpoint_every": 2, "patience": 0, "eval_batch_size": 16, "threads": 1},
        "generate": {"max_new_tokens": 12, "batch_size": 4},
        "report": {"baseline": True, "plots": True, "generation_limit": 6, "few_shot": 1},
    }
    for sec, values in sections.items():
        cfg.setdefault(sec, {}).update(values)
    return cfg


GUARD_LABELS = "hate_speech,offensive_language,neither"


@pytest.fixture(scope="session")
def guard_run(tmp_path_factory, tiny_model) -> Path:
    """A tiny three-class guard (Davidson's classes, tweets normalised): 'all X are vermin' is
    hate speech, 'you are a damn idiot' offensive language, 'all X are lovely' and real
    customer-support requests and responses (Bitext) neither."""
    import csv
    import random

    import landfall
    from landfall.config import build_config

    rng = random.Random(0)
    people = ["neighbours", "drivers", "students", "tourists", "farmers", "doctors"]
    rows = []
    for i in range(300):
        kind = i % 3
        if kind == 0:
            text = f"all {rng.choice(people)} are {rng.choice(['vermin', 'subhuman', 'trash'])}"
        elif kind == 1:
            text = f"you are a {rng.choice(['damn', 'bloody', 'stupid'])} " \
                   f"{rng.choice(['idiot', 'moron', 'fool'])}"
        else:
            text = f"all {rng.choice(people)} are {rng.choice(['lovely', 'kind', 'great'])}"
        rows.append({"tweet": text, "class": kind})
    for r in bitext_rows(120):
        rows.append({"tweet": r["instruction"], "class": 2})
        rows.append({"tweet": r["response"][:200], "class": 2})
    tmp = tmp_path_factory.mktemp("guard")
    with (tmp / "train.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["tweet", "class"])
        w.writeheader()
        w.writerows(rows)
    cfg = tiny_config(tiny_model, tmp / "train.csv",
                      # one evaluation, at the end: an early checkpoint ties on macro-F1
                      # (1.0) while still unsure, and ties keep the first
                      train={"epochs": 6.0, "lr": 3e-3, "eval_every": 10_000, "batch_size": 16,
                             "class_weight": "balanced", "metric": "macro_f1"},
                      report={"baseline": False, "plots": False})
    cfg["data"].update(text_field="tweet", label_field="class", label_names=GUARD_LABELS,
                       max_length=16, truncation="head", normalize="tweet")
    landfall.train(build_config(cfg), tmp / "run")
    return tmp / "run"
