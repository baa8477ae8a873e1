"""Tests for landfall.data: readers, label sets and the stratified split."""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from landfall.data.labels import encode_labels, infer_labels
from landfall.data.readers import Example, read_examples, read_texts
from landfall.data.splits import blocked_split, stratified_split
from landfall.errors import DataError, LandfallError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def examples(labels: list[str]) -> list[Example]:
    return [Example(f"text {i}", label, i + 1, "mem.jsonl") for i, label in enumerate(labels)]


# --- readers on the shared data -------------------------------------------------------------


@needs_shared
def test_imdb_jsonl_gz_with_limit() -> None:
    path = SHARED / "imdb" / "train.jsonl.gz"
    got = read_examples(path, limit=5)
    assert len(got) == 5
    assert [e.line for e in got] == [1, 2, 3, 4, 5]
    assert all(e.label in {"pos", "neg"} and e.text and e.source == str(path) for e in got)


@needs_shared
def test_banking77_csv_with_field_mapping() -> None:
    path = SHARED / "banking77" / "train.csv"
    got = read_examples(path, label_field="category", limit=40)
    assert len(got) == 40
    assert got[0] == Example("I am still waiting on my card?", "card_arrival", 2, str(path))
    # row 5 is quoted (it holds a comma); lines count the header as line 1
    assert got[4].text == "How do I know if I will get my card, or if it is lost?"
    assert got[4].line == 6
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(e.text.split()[0] in lines[e.line - 1] for e in got)


@needs_shared
def test_clinc150_jsonl_intent_field() -> None:
    got = read_examples(SHARED / "clinc150" / "train.jsonl", label_field="intent", limit=10)
    assert got[0].label == "translate" and got[0].line == 1


@needs_shared
def test_imdb_unsup_as_texts_and_missing_label_lists_fields() -> None:
    path = SHARED / "imdb" / "unsup.jsonl.gz"
    texts = read_texts(path, limit=3)
    assert [e.label for e in texts] == [None, None, None]
    with pytest.raises(DataError) as err:
        read_examples(path, limit=3)
    msg = str(err.value)
    assert f"{path}:1: field 'label'" in msg
    assert "'id', 'text', 'rating'" in msg


# --- readers on files made here -------------------------------------------------------------


def test_tsv_gz_and_int_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("sentence\tlabel\nfine film\t1\n\nbad, bad film\t0\n")
    got = read_examples(path, text_field="sentence")
    assert [(e.text, e.label, e.line) for e in got] == [
        ("fine film", "1", 2),
        ("bad, bad film", "0", 4),
    ]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    table = pa.table({"body": ["a", "b", "c"], "label": [3, 1, 3], "x": [0.1, 0.2, 0.3]})
    pq.write_table(table, path)
    got = read_examples(path, text_field="body")
    assert [(e.text, e.label, e.line) for e in got] == [("a", "3", 1), ("b", "1", 2), ("c", "3", 3)]
    assert read_examples(path, text_field="body", limit=2)[-1].line == 2
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert "field 'text'" in str(err.value) and "'body', 'label', 'x'" in str(err.value)


def make_imdb_folder(root: Path) -> None:
    for label, texts in {"pos": ["great", "lovely"], "neg": ["awful"], "unsup": ["?"]}.items():
        folder = root / label
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_7.txt").write_text(text, encoding="utf-8")


def test_aclimdb_label_folders(tmp_path: Path) -> None:
    make_imdb_folder(tmp_path / "train")
    got = read_examples(tmp_path / "train")
    assert [(e.text, e.label) for e in got] == [
        ("awful", "neg"),
        ("great", "pos"),
        ("lovely", "pos"),
    ]
    assert got[0].line == 1 and got[0].source == str(tmp_path / "train" / "neg" / "0_7.txt")


def test_aclimdb_dataset_root_uses_split(tmp_path: Path) -> None:
    make_imdb_folder(tmp_path / "aclImdb" / "train")
    (tmp_path / "aclImdb" / "test" / "pos").mkdir(parents=True)
    (tmp_path / "aclImdb" / "test" / "pos" / "9_9.txt").write_text("yes", encoding="utf-8")
    (tmp_path / "aclImdb" / "imdb.vocab").write_text("a\n", encoding="utf-8")
    assert len(read_examples(tmp_path / "aclImdb")) == 3
    assert [e.text for e in read_examples(tmp_path / "aclImdb", split="test")] == ["yes"]
    with pytest.raises(DataError, match="'dev'.*'test', 'train'"):
        read_examples(tmp_path / "aclImdb", split="dev")


def test_aclimdb_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    make_imdb_folder(tmp_path)
    bad = tmp_path / "pos" / "1_7.txt"
    bad.write_bytes(b"line one\nline two \xff\n")
    with pytest.raises(DataError) as err:
        read_examples(tmp_path)
    assert str(err.value).startswith(f"{bad}:2: not valid UTF-8")


def test_hub_dataset_maps_class_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    data = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad", "fine"], "label": [1, 0, 1]}, features=features
    )
    calls = []

    def fake_load(name: str, split: str) -> object:
        calls.append((name, split))
        return data

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    got = read_examples("org/sst", text_field="sentence", split="validation", limit=2)
    assert calls == [("org/sst", "validation")]
    assert got == [Example("good", "pos", 1, "org/sst"), Example("bad", "neg", 2, "org/sst")]


def test_hub_without_datasets_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(LandfallError, match=r"pip install 'landfall\[hub\]'"):
        read_examples("someone/some_data")


# --- bad input --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="does not exist") as err:
        read_examples(path)
    assert str(path) in str(err.value)


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert str(path) in str(err.value) and ".jsonl.gz" in str(err.value)
    assert ".parquet" in str(err.value)


def test_missing_text_field_lists_present_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"txt": "b", "y": 1}])
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert str(err.value) == (
        f"{path}:2: field 'text': missing text field; fields present: 'txt', 'y'"
    )


def test_csv_missing_column_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,category\nhello,a\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert str(err.value).startswith(f"{path}:1: field 'label': missing label column")
    assert "'text', 'category'" in str(err.value)


def test_empty_text_names_line(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"text": " ", "label": 1}]
    )
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert str(err.value) == f"{path}:2: field 'text': text is empty"


def test_text_not_a_string(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": 5, "label": "x"}])
    with pytest.raises(DataError, match=r":1: field 'text': text must be a string, got int"):
        read_examples(path)


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.csv"])
def test_non_utf8_byte_names_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        data = b"text,label\nok,a\ncaf\xe9,b\n"
    else:
        data = b'{"text": "ok", "label": "a"}\n\n{"text": "caf\xe9", "label": "b"}\n'
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataError) as err:
        read_examples(path)
    assert str(err.value).startswith(f"{path}:3: not valid UTF-8: byte 0xe9")


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": }\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:2: malformed JSON"):
        read_examples(path)


def test_json_line_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.json", [[{"text": "a", "label": "x"}]])
    with pytest.raises(DataError, match=r"d\.json:1: expected a JSON object, got list.*JSON Lines"):
        read_examples(path)


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.parquet"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".parquet"):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([])}), path)
    else:
        path.write_text("text,label\n" if name.endswith(".csv") else "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no examples") as err:
        read_examples(path)
    assert str(path) in str(err.value)


def test_csv_row_with_wrong_column_count(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb,y,z\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv:3: row has 3 columns, the header has 2"):
        read_examples(path)


# --- labels -----------------------------------------------------------------------------------


def test_infer_labels_sorts_numbers_numerically() -> None:
    assert infer_labels(examples(["10", "2", "1", "2"])) == ["1", "2", "10"]
    assert infer_labels(examples(["pos", "neg", "pos"])) == ["neg", "pos"]


def test_single_class_training_set() -> None:
    with pytest.raises(DataError) as err:
        infer_labels(examples(["pos", "pos"]), source="train.jsonl")
    assert str(err.value) == (
        "train.jsonl: single-class training set: every example has label 'pos'; "
        "need at least two classes"
    )


def test_infer_labels_missing_label() -> None:
    data = [Example("a", "x", 1, "f.jsonl"), Example("b", None, 7, "f.jsonl")]
    with pytest.raises(DataError, match=r"^f\.jsonl:7: missing label"):
        infer_labels(data)


def test_encode_unknown_label_names_source_line_field() -> None:
    data = [Example("a", "neg", 1, "t.csv"), Example("b", "maybe", 3, "t.csv")]
    assert encode_labels(data[:1], ["neg", "pos"]) == [0]
    with pytest.raises(DataError) as err:
        encode_labels(data, ["neg", "pos"], label_field="sentiment")
    assert str(err.value) == (
        "t.csv:3: field 'sentiment': unknown label 'maybe'; known labels: 'neg', 'pos'"
    )


# --- splits -----------------------------------------------------------------------------------


def test_stratified_split_deterministic_and_proportional() -> None:
    data = examples(["a"] * 70 + ["b"] * 20 + ["c"] * 10)
    train, val = stratified_split(data, 0.2, seed=13)
    assert (len(train), len(val)) == (80, 20)
    assert Counter(e.label for e in val) == {"a": 14, "b": 4, "c": 2}
    assert Counter(e.label for e in train) == {"a": 56, "b": 16, "c": 8}
    assert set(train).isdisjoint(val) and len(set(train) | set(val)) == 100
    assert stratified_split(data, 0.2, seed=13) == (train, val)
    assert stratified_split(data, 0.2, seed=14) != (train, val)


def test_stratified_split_falls_back_when_a_class_is_tiny() -> None:
    data = examples(["a"] * 9 + ["b"])
    train, val = stratified_split(data, 0.3, seed=0)
    assert (len(train), len(val)) == (7, 3)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(LandfallError, match="fraction"):
        stratified_split(examples(["a", "b"] * 5), fraction, seed=0)


def test_blocked_split_keeps_adjacent_rows_together() -> None:
    # rows 1-60 are "a", 61-100 "b"; blocks of 10 rows: 1-9, 10-19, ... (line // 10)
    data = examples(["a"] * 60 + ["b"] * 40)
    train, val = blocked_split(data, 0.2, seed=3, block=10)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 100
    val_blocks = {(e.label, e.line // 10) for e in val}
    assert all((e.label, e.line // 10) not in val_blocks for e in train)  # none straddles
    got = Counter(e.label for e in val)
    assert got["a"] >= 12 and got["b"] >= 8  # each class's share, rounded up to whole blocks
    assert blocked_split(data, 0.2, seed=3, block=10) == (train, val)
    assert blocked_split(data, 0.2, seed=4, block=10) != (train, val)


def test_blocked_split_refuses_to_hold_out_a_whole_class() -> None:
    data = examples(["a"] * 50 + ["b"] * 5)
    with pytest.raises(LandfallError, match="class 'b'.*smaller data.split_block"):
        blocked_split(data, 0.1, seed=0, block=10)


@needs_shared
def test_blocked_split_on_imdb_holds_out_whole_runs_of_reviews() -> None:
    from landfall.config import DataConfig
    from landfall.data.prepare import carve

    cfg = DataConfig(train=str(SHARED / "imdb" / "train.jsonl.gz"), split_block=100)
    train, val, labels, _, val_source = carve(cfg, seed=42)
    assert labels == ["neg", "pos"] and "blocks of 100 rows" in val_source
    assert abs(len(val) - 2500) < 200 and Counter(e.label for e in val)["pos"] >= 1250
    held = {(e.label, e.line // 100) for e in val}
    assert all((e.label, e.line // 100) not in held for e in train)


@needs_shared
def test_split_seed_fixes_the_split_while_the_training_seed_varies() -> None:
    from landfall.config import DataConfig
    from landfall.data.prepare import carve

    path = str(SHARED / "davidson-hate" / "train.csv")
    follows = DataConfig(train=path, text_field="tweet", label_field="class", limit=2000)
    pinned = DataConfig(train=path, text_field="tweet", label_field="class", limit=2000,
                        split_seed=42)

    def lines(cfg, seed):
        train, val, _, _, source = carve(cfg, seed)
        return [e.line for e in train], [e.line for e in val], source

    assert lines(follows, 42) == lines(pinned, 7) == lines(pinned, 42)
    assert lines(follows, 7)[1] != lines(pinned, 7)[1]  # by default the split follows the seed
    assert lines(pinned, 7)[2].endswith("seed 42)")


def test_hostile_jsonl_names_file_and_line(tmp_path):
    from landfall.data.readers import read_examples
    from landfall.errors import DataError

    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "fine", "label": "a"}\n{"text": "\\ud800", "label": "b"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'text': .*lone surrogate"):
        read_examples(f)
    f.write_text('{"text": "fine", "label": "a"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON: nested too deeply"):
        read_examples(f)


def test_csv_texts_longer_than_csvs_default_limit_are_read(tmp_path):
    from landfall.data.readers import read_examples

    f = tmp_path / "long.csv"
    f.write_text("text,label\n" + "word " * 40_000 + ",pos\nshort,neg\n")
    rows = read_examples(f)
    assert len(rows[0].text) == 200_000 and rows[1].label == "neg"
