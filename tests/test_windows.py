"""Long-text strategies and per-document aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from landfall.data.windows import WindowSpec, aggregate_logits, make_windows, split_windows
from landfall.errors import ConfigError

DOC = list(range(1000))


def spec(**kw) -> WindowSpec:
    base = {"max_length": 66, "specials": 2, "head_tokens": 20, "stride": 16, "max_windows": 0}
    return WindowSpec(**{**base, **kw})


def test_short_document_is_one_window_for_every_strategy():
    for t in ("head", "tail", "head+tail", "sliding"):
        assert split_windows(list(range(10)), spec(truncation=t)) == [list(range(10))]


def test_head_tail_and_head_plus_tail():
    assert split_windows(DOC, spec(truncation="head")) == [DOC[:64]]
    assert split_windows(DOC, spec(truncation="tail")) == [DOC[-64:]]
    (w,) = split_windows(DOC, spec(truncation="head+tail"))
    assert w == DOC[:20] + DOC[-44:] and len(w) == 64
    (half,) = split_windows(DOC, spec(truncation="head+tail", head_tokens=0))
    assert half == DOC[:32] + DOC[-32:]


def test_sliding_windows_overlap_by_stride_and_cover_everything():
    ws = split_windows(DOC, spec(truncation="sliding"))
    assert all(len(w) == 64 for w in ws)
    assert ws[0][0] == 0 and ws[-1][-1] == 999
    covered = {t for w in ws for t in w}
    assert covered == set(DOC)
    for a, b in zip(ws[:-2], ws[1:-1], strict=True):  # regular steps share `stride` tokens
        assert len(set(a) & set(b)) == 16


def test_sliding_max_windows_keeps_first_and_last():
    ws = split_windows(DOC, spec(truncation="sliding", max_windows=4))
    assert len(ws) == 4 and ws[0][0] == 0 and ws[-1][-1] == 999


def test_make_windows_adds_specials_and_tracks_owner():
    windows, owner = make_windows([DOC[:5], DOC], spec(truncation="sliding"),
                                  lambda w: [-1] + w + [-2])
    assert windows[0] == [-1, 0, 1, 2, 3, 4, -2]
    assert owner[0] == 0 and set(owner[1:]) == {1}
    assert all(len(w) <= 66 for w in windows)


def test_aggregate_mean_and_max():
    logits = np.array([[1.0, 0.0], [3.0, -2.0], [0.0, 5.0]])
    owner = [0, 0, 1]
    np.testing.assert_allclose(aggregate_logits(logits, owner, 2, "mean"),
                               [[2.0, -1.0], [0.0, 5.0]])
    np.testing.assert_allclose(aggregate_logits(logits, owner, 2, "max"),
                               [[3.0, 0.0], [0.0, 5.0]])


def test_invalid_specs_are_config_errors():
    with pytest.raises(ConfigError, match="stride"):
        spec(truncation="sliding", stride=64).validate()
    with pytest.raises(ConfigError, match="head_tokens"):
        spec(truncation="head+tail", head_tokens=100).validate()


def test_tokenize_keeps_whole_documents():
    """MiniLM's tokenizer.json truncates and pads to 128; documents must arrive whole."""
    from transformers import AutoTokenizer

    from landfall.data.tokens import tokenize
    from landfall.hub import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("minilm"))  # fresh: nothing reset yet
    long_doc, short = tokenize(["word " * 400, "short text"], tok, cache=False)
    assert len(long_doc) == 400 and len(short) == 2
    assert tok.pad_token_id not in long_doc + short
