"""Annotator votes as soft targets (data.vote_fields, train.vote_weight)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import landfall
from conftest import need_data, tiny_config
from landfall.config import DataConfig, build_config
from landfall.data.prepare import carve
from landfall.data.readers import read_examples
from landfall.data.votes import vote_columns, vote_targets
from landfall.errors import ConfigError, DataError
from landfall.inference.loading import load_run

DAVIDSON = "davidson-hate/train.csv"
VOTES = "hate_speech,offensive_language,neither"


def davidson(**fields) -> DataConfig:
    return DataConfig(train=str(need_data() / DAVIDSON), text_field="tweet", label_field="class",
                      label_names=VOTES, vote_fields=VOTES, limit=300, **fields)


def test_davidson_votes_become_shares_in_label_order() -> None:
    train, _, labels, _, _ = carve(davidson(), seed=0)
    assert labels == ["hate_speech", "neither", "offensive_language"]
    shares = vote_targets(train, labels, VOTES)
    for e, row in zip(train, shares, strict=True):
        counts = [float(e.extra[c]) for c in ("hate_speech", "neither", "offensive_language")]
        np.testing.assert_allclose(row, np.asarray(counts) / sum(counts))
        assert labels[int(np.argmax(row))] == e.label or max(row) < 1  # majority or a tie
    assert any(0 < r[0] < 1 for r in shares)  # disagreement is there to learn from


def test_bad_votes_name_the_file_line_and_column(tmp_path) -> None:
    f = tmp_path / "v.csv"
    f.write_text("text,label,a,b\nfine,a,2,1\nodd,b,1,many\n")
    rows = read_examples(f, extra_fields=vote_columns("a,b=b"))
    with pytest.raises(DataError, match=r"v.csv:3: field 'b': vote count must be a number"):
        vote_targets(rows, ["a", "b"], "a,b=b")
    with pytest.raises(ConfigError, match=r"missing \['b'\], not a label \['c'\]"):
        vote_targets(rows, ["a", "b"], "a,c")


def test_training_follows_the_votes_when_asked(tiny_model, tmp_path) -> None:
    """Real tweets; a planted word decides the label, and the votes say the opposite.
    With vote_weight 1 the model learns the votes, with 0 the label."""
    import itertools

    with open(need_data() / DAVIDSON, newline="", encoding="utf-8") as fh:
        tweets = [r["tweet"] for r in itertools.islice(csv.DictReader(fh), 240)]
    f = tmp_path / "planted.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "a", "b"])
        for i, t in enumerate(tweets):
            planted = i % 2 == 0
            w.writerow([f"zebra {t}" if planted else t, "a" if planted else "b",
                        0 if planted else 3, 3 if planted else 0])
    probe = [f"zebra {t}" for t in tweets[:20:2]]

    def p_a(weight: float) -> float:
        # one evaluation, at the end: the labels must not pick an early checkpoint
        cfg = tiny_config(tiny_model, f, train={"epochs": 6.0, "lr": 3e-3, "batch_size": 16,
                                                 "vote_weight": weight, "eval_every": 10_000},
                          report={"baseline": False, "plots": False})
        cfg["data"].update(vote_fields="a,b", max_length=32, truncation="head")
        out = tmp_path / f"w{weight}"
        landfall.train(build_config(cfg), out)
        return float(load_run(out).predict(probe).probs[:, 0].mean())

    assert p_a(0.0) > 0.7 and p_a(1.0) < 0.3
