"""``landfall data clean``: find the PII in a training file's text fields and redact it (each
span becomes <TYPE>) or drop the rows that hold any; counts per entity type come back and go
beside the output as ``<output>.pii.json``. Every other field and the file's format (JSONL or
CSV/TSV) are kept; the output is written atomically, so a failure never leaves half a file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

from landfall.data.readers import read_records
from landfall.errors import DataError, LandfallError
from landfall.runs import atomic_path, write_json
from landfall.safety.pii import PiiDetector, redact
from landfall.utils.progress import progress_bar

CHUNK = 256


def clean_file(source: str | Path, output: str | Path, *, fields: tuple[str, ...] = (),
               mode: str = "redact", entities: tuple[str, ...] = (),
               min_score: float = 0.4) -> dict:
    source, output = Path(source), Path(output)
    if mode not in ("redact", "drop"):
        raise LandfallError(f"mode must be redact or drop, got {mode!r}")
    if source.resolve() == output.resolve():
        raise LandfallError(f"{output}: write the cleaned file beside the original, not over it")
    rows = list(read_records(source))
    if not rows:
        raise DataError("no rows: the input is empty", path=str(source))
    names = list(fields) or [k for k, v in rows[0][1].items() if isinstance(v, str)]
    for line, record in rows:
        missing = [f for f in names if f not in record]
        if missing:
            raise DataError(f"missing field; fields present: {', '.join(record)}",
                            path=str(source), line=line, field=missing[0])
    detector = PiiDetector(entities, min_score)
    per_type: Counter = Counter()
    kept, changed, dropped = [], 0, 0
    with progress_bar(total=len(rows), desc="finding PII", unit="row") as bar:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            found = {f: detector.find(str(r.get(f) or "") for _, r in chunk) for f in names}
            for j, (_, record) in enumerate(chunk):
                spans = {f: found[f][j] for f in names if found[f][j]}
                for s in spans.values():
                    per_type.update(x.entity for x in s)
                if not spans:
                    kept.append(record)
                elif mode == "drop":
                    dropped += 1
                else:
                    changed += 1
                    kept.append({**record, **{f: redact(record[f], s)
                                              for f, s in spans.items()}})
            bar.update(len(chunk))
    _write(output, kept, list(rows[0][1]))
    summary = {"source": str(source), "output": str(output), "mode": mode, "fields": names,
               "rows": len(rows), "rows_with_pii": changed + dropped, "rows_written": len(kept),
               "rows_dropped": dropped, "entities": dict(per_type.most_common())}
    write_json(output.with_name(output.name + ".pii.json"), summary)
    return summary


def _write(path: Path, records: list[dict], columns: list[str]) -> None:
    low = path.name.lower()
    if low.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    elif low.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns,
                                delimiter="\t" if ".tsv" in low else ",")
        writer.writeheader()
        writer.writerows(records)
        text = buf.getvalue()
    else:
        raise LandfallError(f"{path}: name the output .jsonl or .csv (optionally .gz)")
    data = text.encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data) if low.endswith(".gz") else data)
