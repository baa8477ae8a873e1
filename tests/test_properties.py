"""Property-based tests (hypothesis): the readers never fail with anything but a DataError
naming the file, and the long-text windows always cover the text within the budget."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from landfall.data.readers import read_examples  # noqa: E402
from landfall.data.windows import WindowSpec, split_windows  # noqa: E402
from landfall.errors import DataError  # noqa: E402

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=4),
    max_leaves=20)


@FAST
@given(raw=st.binary(max_size=2000), suffix=st.sampled_from([".jsonl", ".csv", ".tsv",
                                                              ".jsonl.gz", ".parquet"]))
def test_any_bytes_either_read_or_fail_with_a_data_error(tmp_path, raw, suffix):
    f = tmp_path / f"data{suffix}"
    f.write_bytes(raw)
    try:
        rows = read_examples(f)
    except DataError as exc:
        assert str(f) in str(exc)
        return
    assert all(isinstance(r.text, str) and r.text.strip() for r in rows)


@FAST
@given(records=st.lists(st.dictionaries(st.sampled_from(["text", "label", "x"]), json_values,
                                        max_size=3), min_size=1, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_any_json_records_in_any_encoding(tmp_path, records, encoding):
    import json

    f = tmp_path / "data.jsonl"
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    f.write_bytes(text.encode(encoding, errors="replace"))
    try:
        rows = read_examples(f)
    except DataError as exc:
        assert str(f) in str(exc)
        return
    for r in rows:
        r.text.encode("utf-8")  # every text read is valid Unicode
        assert r.label is not None


@FAST
@given(n=st.integers(0, 3000), max_length=st.integers(4, 600), stride=st.integers(0, 600),
       head=st.integers(0, 600), max_windows=st.integers(0, 12),
       truncation=st.sampled_from(["head", "tail", "head+tail", "sliding"]))
def test_windows_cover_the_text_within_the_budget(n, max_length, stride, head, max_windows,
                                                  truncation):
    spec = WindowSpec(max_length=max_length, truncation=truncation, head_tokens=head,
                      stride=stride, max_windows=max_windows, specials=2)
    try:
        spec.validate()
    except Exception:
        return  # refused settings are the config tests' business
    ids = list(range(n))
    windows = split_windows(ids, spec)
    assert windows and all(len(w) <= spec.body for w in windows)
    assert all(w == ids[w[0]: w[0] + len(w)] or truncation == "head+tail" for w in windows if w)
    if n <= spec.body:
        assert windows == [ids]
    elif truncation == "head":
        assert windows == [ids[: spec.body]]
    elif truncation == "tail":
        assert windows == [ids[-spec.body:]]
    elif truncation == "head+tail":
        h = head or spec.body // 2
        assert windows == [ids[:h] + ids[n - (spec.body - h):]] and len(windows[0]) == spec.body
    else:
        assert windows[0][0] == 0  # the first token is read, and the last unless a single
        assert windows[-1][-1] == n - 1 or max_windows == 1  # window is all that is allowed
        if not max_windows:  # every token is in some window
            assert set().union(*map(set, windows)) == set(ids)
        else:
            assert len(windows) <= max_windows
