"""Read labelled (or unlabelled) text examples from files, folders and the Hugging Face hub.

Every problem with the input is raised as one ``DataError`` that names the file, the line and
the field, so that the user can open the file and fix it.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landfall.errors import DataError, LandfallError

JSONL_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json")
CSV_SUFFIXES = (".csv.gz", ".csv")
TSV_SUFFIXES = (".tsv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED = (
    ".jsonl",
    ".jsonl.gz",
    ".json",
    ".json.gz",
    ".csv",
    ".csv.gz",
    ".tsv",
    ".tsv.gz",
    ".parquet",
)
# A name with one of these endings is meant as a file, never as a hub dataset name.
_FILE_LIKE = (*SUPPORTED, ".gz", ".txt", ".zip", ".xlsx", ".xls", ".arrow", ".pkl", ".bz2", ".xz")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_UNSUP = "unsup"
# csv's default field limit (131,072 characters) is smaller than a long review or article; a
# field over this larger limit is reported as such, not as "malformed CSV"
CSV_FIELD_LIMIT = 1 << 26
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


@dataclass(frozen=True)
class Example:
    """One text with its label (None when unlabelled) and where it came from."""

    text: str
    label: str | None
    line: int
    source: str
    # other fields asked for by name (``extra_fields``): raw values, None when absent
    extra: dict[str, Any] | None = field(default=None, compare=False, hash=False)


def read_examples(
    source: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    require_labels: bool = True,
    split: str = "train",
    limit: int | None = None,
    extra_fields: tuple[str, ...] = (),
    label_names: tuple[str, ...] = (),
) -> list[Example]:
    """Read examples from a JSONL/CSV/TSV/Parquet file, an aclImdb folder or a hub dataset.

    ``extra_fields`` are kept, as read, in each example's ``extra`` dict (None when absent).
    ``label_names`` name labels stored as class numbers: label ``"2"`` becomes
    ``label_names[2]``."""
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise LandfallError(f"limit must be a positive number of examples, got {limit!r}")
    fields = _Fields(text_field, label_field, require_labels, tuple(extra_fields))
    name = str(source)
    stream = _open_source(name, fields, split)
    examples: list[Example] = []
    try:
        for example in stream:
            if label_names and example.label is not None:
                example = _named(example, label_names, fields.label)
            examples.append(example)
            if limit is not None and len(examples) >= limit:
                break
    finally:
        stream.close()
    if not examples:
        raise DataError("no examples: the input is empty", path=name)
    return examples


def read_texts(
    source: str | Path, *, text_field: str = "text", limit: int | None = None
) -> list[Example]:
    """Read texts for prediction; labels are kept when present but not required."""
    return read_examples(source, text_field=text_field, require_labels=False, limit=limit)


@dataclass(frozen=True)
class _Fields:
    text: str
    label: str
    require_labels: bool
    extra: tuple[str, ...] = ()


def _open_source(name: str, fields: _Fields, split: str) -> Iterator[Example]:
    path = Path(name)
    if path.is_dir():
        return _read_folder(path, fields, split)
    if not path.exists():
        if _looks_like_hub_name(name):
            return _read_hub(name, fields, split)
        raise DataError("file or folder does not exist", path=name)
    lower = path.name.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return _read_jsonl(path, fields)
    if lower.endswith(CSV_SUFFIXES):
        return _read_csv(path, fields, delimiter=",")
    if lower.endswith(TSV_SUFFIXES):
        return _read_csv(path, fields, delimiter="\t")
    if lower.endswith(PARQUET_SUFFIXES):
        return _read_parquet(path, fields)
    raise DataError(
        f"unsupported file type; supported: {', '.join(SUPPORTED)}, an aclImdb-style folder "
        "(label subfolders of .txt files) or a Hugging Face hub dataset name",
        path=name,
    )


def _looks_like_hub_name(name: str) -> bool:
    return bool(_HUB_NAME.match(name)) and not name.lower().endswith(_FILE_LIKE)


# --- records -> examples -------------------------------------------------------------------


def _present(keys: Iterable[str]) -> str:
    names = [str(k) for k in keys]
    return ", ".join(repr(k) for k in names) if names else "none"


def _make_example(
    record: dict[str, Any], fields: _Fields, path: str, line: int, label_names: list[str] | None
) -> Example:
    if fields.text not in record:
        raise DataError(
            f"missing text field; fields present: {_present(record)}",
            path=path,
            line=line,
            field=fields.text,
        )
    text = record[fields.text]
    if not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        raise DataError(
            f"text must be a string, got {kind}", path=path, line=line, field=fields.text
        )
    if not text.strip():
        raise DataError("text is empty", path=path, line=line, field=fields.text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError("text is not valid Unicode (a lone surrogate such as \\ud800)",
                        path=path, line=line, field=fields.text) from None
    if fields.label not in record:
        if fields.require_labels:
            raise DataError(
                f"missing label field; fields present: {_present(record)}",
                path=path,
                line=line,
                field=fields.label,
            )
        return Example(text=text, label=None, line=line, source=path,
                       extra=_extra(record, fields))
    label = _label_str(record[fields.label], label_names, path, line, fields.label)
    if label is None and fields.require_labels:
        raise DataError(
            "label is missing (empty or null)", path=path, line=line, field=fields.label
        )
    return Example(text=text, label=label, line=line, source=path, extra=_extra(record, fields))


def _named(example: Example, names: tuple[str, ...], field: str) -> Example:
    if not _INTEGER_LABEL.match(example.label) or not 0 <= int(example.label) < len(names):
        raise DataError(f"label {example.label!r} is not a class number 0..{len(names) - 1} "
                        f"of data.label_names ({', '.join(names)})", path=example.source,
                        line=example.line, field=field)
    return dataclasses.replace(example, label=names[int(example.label)])


_INTEGER_LABEL = re.compile(r"^\d+$")


def _extra(record: dict[str, Any], fields: _Fields) -> dict[str, Any] | None:
    return {name: record.get(name) for name in fields.extra} if fields.extra else None


def _label_str(
    value: Any, label_names: list[str] | None, path: str, line: int, field: str
) -> str | None:
    """A label as str; None for a missing value (null, empty, NaN, -1 of a ClassLabel)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if label_names is not None:
            if value == -1:
                return None
            if not 0 <= value < len(label_names):
                raise DataError(
                    f"class index {value} is out of range for {len(label_names)} classes",
                    path=path,
                    line=line,
                    field=field,
                )
            return label_names[value]
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise DataError(
        f"label must be a string, integer or boolean, got {type(value).__name__}",
        path=path,
        line=line,
        field=field,
    )


# --- line-oriented files -------------------------------------------------------------------


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line, decoding UTF-8 ourselves to name a bad line."""
    name = str(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
                        " (save the file as UTF-8)",
                        path=name,
                        line=number,
                    ) from None
                if number == 1:
                    text = text.removeprefix("\ufeff")
                yield number, text
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"cannot read the file: {exc}", path=name, line=number + 1 if number else None
        ) from None


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    name = str(path)
    for number, text in _decoded_lines(path):
        if not text.strip():
            continue
        hint = ""
        if text.lstrip().startswith("["):
            hint = " (this looks like a JSON array; write JSON Lines: one object a line)"
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"malformed JSON: {exc.msg} at column {exc.colno}{hint}", path=name, line=number
            ) from None
        except RecursionError:
            raise DataError("malformed JSON: nested too deeply", path=name, line=number) from None
        if not isinstance(record, dict):
            kind = "null" if record is None else type(record).__name__
            raise DataError(f"expected a JSON object, got {kind}{hint}", path=name, line=number)
        yield number, record


def _read_jsonl(path: Path, fields: _Fields) -> Iterator[Example]:
    for number, record in _jsonl_records(path):
        yield _make_example(record, fields, str(path), number, None)


def _csv_records(path: Path, delimiter: str, fields: _Fields | None = None
                 ) -> Iterator[tuple[int, dict[str, Any]]]:
    name = str(path)
    lines = _decoded_lines(path)
    reader = csv.reader((text for _, text in lines), delimiter=delimiter)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [column.strip() for column in header]
        if fields is not None:
            _check_columns(header, fields, name)
        start = reader.line_num + 1
        for row in reader:
            if not any(cell.strip() for cell in row):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise DataError(
                    f"row has {len(row)} columns, the header has {len(header)}",
                    path=name,
                    line=start,
                )
            yield start, dict(zip(header, row, strict=True))
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DataError(f"a field is longer than {CSV_FIELD_LIMIT:,} characters",
                            path=name, line=start) from None
        raise DataError(f"malformed CSV: {exc}", path=name, line=start) from None
    finally:
        lines.close()


def _read_csv(path: Path, fields: _Fields, delimiter: str) -> Iterator[Example]:
    for number, record in _csv_records(path, delimiter, fields):
        yield _make_example(record, fields, str(path), number, None)


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, record) of every row of a JSONL(.gz) or CSV/TSV(.gz) file, all fields as read
    (for tools that rewrite a file, such as ``landfall data clean``)."""
    path = Path(path)
    low = path.name.lower()
    if low.endswith(JSONL_SUFFIXES):
        return _jsonl_records(path)
    if low.endswith(CSV_SUFFIXES) or low.endswith(TSV_SUFFIXES):
        return _csv_records(path, "\t" if low.endswith(TSV_SUFFIXES) else ",")
    raise DataError(f"expected a JSONL or CSV/TSV file (one of {', '.join(SUPPORTED[:8])})",
                    path=str(path))


def _check_columns(columns: list[str], fields: _Fields, name: str, line: int | None = 1) -> None:
    wanted = [fields.text, fields.label] if fields.require_labels else [fields.text]
    for column in wanted:
        if column not in columns:
            kind = "text" if column == fields.text else "label"
            raise DataError(
                f"missing {kind} column; columns present: {_present(columns)}",
                path=name,
                line=line,
                field=column,
            )


# --- parquet -------------------------------------------------------------------------------


def _read_parquet(path: Path, fields: _Fields) -> Iterator[Example]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", path=name) from None
    with parquet:
        columns = list(parquet.schema_arrow.names)
        _check_columns(columns, fields, name, line=None)
        wanted = [c for c in (fields.text, fields.label) if c in columns]
        number = 0
        for batch in parquet.iter_batches(batch_size=1024, columns=wanted):
            for record in batch.to_pylist():
                number += 1
                yield _make_example(record, fields, name, number, None)


# --- aclImdb folders -----------------------------------------------------------------------


def _label_dirs(folder: Path) -> list[Path]:
    return [
        d
        for d in sorted(folder.iterdir())
        if d.is_dir() and d.name != _UNSUP and any(d.glob("*.txt"))
    ]


def _read_folder(folder: Path, fields: _Fields, split: str) -> Iterator[Example]:
    root = folder
    dirs = _label_dirs(root)
    if not dirs and (folder / split).is_dir():
        root = folder / split
        dirs = _label_dirs(root)
    if dirs:
        for label_dir in dirs:
            for file in sorted(label_dir.glob("*.txt")):
                yield _read_txt(file, label_dir.name)
        return
    loose = sorted(root.glob("*.txt"))
    if loose and not fields.require_labels:
        for file in loose:
            yield _read_txt(file, None)
        return
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    raise DataError(
        "folder has no label subfolders of .txt files (like pos/ and neg/) and no "
        f"'{split}' subfolder holding them; subfolders present: {_present(found)}",
        path=str(folder),
    )


def _read_txt(file: Path, label: str | None) -> Example:
    name = str(file)
    data = file.read_bytes()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} (save the file as UTF-8)",
            path=name,
            line=line,
        ) from None
    if not text.strip():
        raise DataError("text is empty", path=name, line=1)
    return Example(text=text, label=label, line=1, source=name)


# --- Hugging Face hub ----------------------------------------------------------------------


def _read_hub(name: str, fields: _Fields, split: str) -> Iterator[Example]:
    try:
        import datasets
    except ImportError:
        raise LandfallError(
            f"'{name}' is not an existing file or folder; to load it as a Hugging Face hub "
            "dataset install the hub extra: pip install 'landfall[hub]'"
        ) from None
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as exc:  # any hub failure becomes one clear message
        raise DataError(
            "not an existing file or folder, and loading it as a Hugging Face hub dataset "
            f"(split '{split}') failed: {type(exc).__name__}: {exc}",
            path=name,
        ) from None
    columns = list(dataset.column_names)
    _check_columns(columns, fields, name, line=None)
    label_names = None
    feature = dataset.features.get(fields.label)
    if isinstance(feature, datasets.ClassLabel):
        label_names = list(feature.names)
    wanted = [c for c in (fields.text, fields.label) if c in columns]
    dataset = dataset.select_columns(wanted)
    for number, record in enumerate(dataset, 1):
        yield _make_example(record, fields, name, number, label_names)
