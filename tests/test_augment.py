"""EDA augmentation: deterministic, label-preserving, training split only."""

from __future__ import annotations

import os
import random

import pytest

from conftest import imdb_rows
from landfall.data.readers import Example

augment = pytest.importorskip("landfall.data.augment")


@pytest.fixture(autouse=True)
def _need_wordnet():
    from landfall.errors import LandfallError

    try:
        augment._wordnet()
    except LandfallError as exc:  # no WordNet database here (apt-get install wordnet-base)
        if os.environ.get("CI") or os.environ.get("LANDFALL_REQUIRE_WORDNET"):
            pytest.fail(f"WordNet is required here (make test installs it): {exc}")
        pytest.skip(f"NOT RUN: WordNet is missing ({exc}); `make wordnet` installs it")


def test_wordnet_synonyms():
    assert "estimable" in augment.synonyms("good") or "beneficial" in augment.synonyms("good")
    assert augment.synonyms("qwxzv") == ()


def test_each_operation_changes_what_it_should():
    rng = random.Random(0)
    words = "the movie was a wonderful surprise with great acting".split()
    assert len(augment.random_insertion(words, 2, rng)) == len(words) + 2
    swapped = augment.random_swap(words, 2, rng)
    assert sorted(swapped) == sorted(words)
    replaced = augment.synonym_replacement(words, 2, rng)
    assert len(replaced) == len(words) and replaced != words
    assert len(augment.random_deletion(words, 0.5, rng)) < len(words)
    assert augment.random_deletion(["one"], 0.99, rng) == ["one"]


def test_augmentation_is_deterministic_and_keeps_labels():
    rows = imdb_rows(5)
    examples = [Example(r["text"], r["label"], i + 1, "imdb") for i, r in enumerate(rows)]
    a = augment.augment_examples(examples, per_example=2, alpha=0.1, seed=3)
    b = augment.augment_examples(examples, per_example=2, alpha=0.1, seed=3)
    c = augment.augment_examples(examples, per_example=2, alpha=0.1, seed=4)
    assert a == b and a != c
    assert len(a) == 30 and a[:10] == examples
    for i, ex in enumerate(a[10:]):
        assert ex.label == examples[i // 2].label and ex.text != examples[i // 2].text


def test_validation_never_sees_augmented_text(imdb_small):
    from transformers import AutoTokenizer

    from landfall.config import build_config
    from landfall.data.prepare import prepare
    from landfall.hub import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("minilm"))
    cfg = build_config({"data": {"train": str(imdb_small), "augment": "eda",
                                 "validation_fraction": 0.25}})
    plain = build_config({"data": {"train": str(imdb_small), "validation_fraction": 0.25}})
    aug, base = prepare(cfg.data, tok, 42), prepare(plain.data, tok, 42)
    assert len(aug.train.examples) == 2 * len(base.train.examples)
    assert aug.validation.texts == base.validation.texts
    originals = {e.text for e in base.train.examples}
    assert not {e.text for e in aug.train.examples[len(originals):]} & set(base.validation.texts)
