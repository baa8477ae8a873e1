"""data.split_seed in the causal-LM task: the carved validation split (and the data.limit
samples) follow it, not train.seed, as in classification (issue 24)."""

from __future__ import annotations

from transformers import AutoTokenizer

from conftest import tiny_lm_config
from landfall.config import build_config
from landfall.tasks.causal_lm.data import prepare_chat


def _split(tiny_lm, path, train_seed: int, split_seed: int, **data_extra):
    raw = tiny_lm_config(tiny_lm, path, train={"seed": train_seed})
    raw["data"].update(split_seed=split_seed, **data_extra)
    cfg = build_config(raw)
    chat = prepare_chat(cfg, AutoTokenizer.from_pretrained(tiny_lm))
    return ([r.request for r in chat.train], [r.request for r in chat.validation],
            chat.validation_source)


def test_split_seed_fixes_the_validation_rows_while_train_seed_varies(tiny_lm, bitext_small):
    train1, val1, source1 = _split(tiny_lm, bitext_small, 1, 7)
    train2, val2, _ = _split(tiny_lm, bitext_small, 2, 7)
    assert val1 == val2 and train1 == train2
    assert "seed 7" in source1
    # and the split does depend on split_seed (the test could not pass by accident)
    _, val3, _ = _split(tiny_lm, bitext_small, 1, 8)
    assert val3 != val1


def test_split_seed_fixes_the_limit_samples(tiny_lm, bitext_small):
    a = _split(tiny_lm, bitext_small, 1, 7, limit=20, validation_limit=5)
    b = _split(tiny_lm, bitext_small, 2, 7, limit=20, validation_limit=5)
    assert a[0] == b[0] and a[1] == b[1] and len(a[0]) == 20 and len(a[1]) == 5


def test_without_split_seed_the_split_follows_train_seed(tiny_lm, bitext_small):
    _, val1, source = _split(tiny_lm, bitext_small, 1, -1)
    _, val2, _ = _split(tiny_lm, bitext_small, 2, -1)
    assert val1 != val2 and "seed 1" in source
