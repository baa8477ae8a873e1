"""The knowledge base: documents (a question or title, an answer text, an optional intent),
read from JSONL or Markdown, embedded once and searched by the hybrid index
(``inference.retrieve``). Documents are added to a built assistant without retraining
anything: only the new documents are embedded.

On disk (``RUN/knowledge/``): ``documents.jsonl`` (one document a line) and
``vectors.safetensors`` (their unit vectors, in the same order). The FAISS and BM25 indexes
are rebuilt when the assistant loads (milliseconds for thousands of passages), so that the
files a user holds are plain text and safetensors, never a pickled index.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from landfall.errors import DataError, LandfallError
from landfall.runs import atomic_path, write_text

DOCS = "documents.jsonl"
VECTORS = "vectors.safetensors"


@dataclass
class Document:
    id: str
    title: str  # the question the document answers (or a heading)
    text: str  # the answer
    intent: str = ""
    source: str = ""

    def search_text(self) -> str:
        return f"{self.title}\n{self.text}".strip()

    def key_text(self) -> str:
        """What the dense index embeds: the question when there is one (requests are matched
        to questions), else the text."""
        return self.title or self.text


def _need_str(obj: dict, names: tuple[str, ...], path: str, line: int) -> str:
    for name in names:
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise DataError("must be a non-empty string", path=path, line=line, field=name)
            return value.strip()
    raise DataError(f"missing field (one of {', '.join(names)})", path=path, line=line,
                    field=names[0])


def json_objects(path: str | Path):
    """(line number, object) for each non-empty line of a JSONL file; a line that is not a
    JSON object is refused with the file and line (the templates file reads the same way)."""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not JSON: {exc.msg}", path=str(path), line=line_no) from None
            if not isinstance(obj, dict):
                raise DataError("expected a JSON object", path=str(path), line=line_no)
            yield line_no, obj


def read_jsonl(path: str | Path) -> list[Document]:
    """``{"id"?, "title"|"question"?, "text"|"answer", "intent"?}`` per line."""
    docs = []
    for line_no, obj in json_objects(path):
        text = _need_str(obj, ("text", "answer"), str(path), line_no)
        title = obj.get("title", obj.get("question", ""))
        if not isinstance(title, str):
            raise DataError("must be a string", path=str(path), line=line_no, field="title")
        intent = obj.get("intent", "")
        if not isinstance(intent, str):
            raise DataError("must be a string", path=str(path), line=line_no,
                            field="intent")
        doc_id = str(obj.get("id", f"{Path(path).stem}:{line_no}"))
        docs.append(Document(doc_id, title.strip(), text, intent, f"{path}:{line_no}"))
    return docs


_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*$")


def read_markdown(path: str | Path) -> list[Document]:
    """One document per heading (``#``, ``##`` or ``###``): the heading is its title, the
    text up to the next heading its answer. Text before the first heading is refused."""
    docs, title, start, body = [], None, 0, []

    def flush() -> None:
        text = "\n".join(body).strip()
        if title is not None and text:
            docs.append(Document(f"{Path(path).stem}:{start}", title, text, "",
                                 f"{path}:{start}"))

    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        m = _HEADING.match(line)
        if m:
            flush()
            title, start, body = m.group(2), line_no, []
        elif title is None and line.strip():
            raise DataError("text before the first heading (each document starts with a "
                            "# heading)", path=str(path), line=line_no)
        else:
            body.append(line)
    flush()
    if not docs:
        raise DataError("no documents (a # heading followed by text)", path=str(path))
    return docs


def read_documents(path: str | Path) -> list[Document]:
    p = Path(path)
    if not p.is_file():
        raise LandfallError(f"{p}: knowledge file does not exist")
    if p.suffix in (".md", ".markdown"):
        return read_markdown(p)
    if p.suffix in (".jsonl", ".json"):
        return read_jsonl(p)
    raise LandfallError(f"{p}: knowledge files are .jsonl or .md")


class KnowledgeBase:
    """Documents, their vectors and the hybrid index over them."""

    def __init__(self, docs: list[Document], vectors: np.ndarray, embedder,
                 dense_weight: float = 1.0, sparse_weight: float = 1.0) -> None:
        from landfall.inference.retrieve import HybridIndex

        self.docs, self.vectors, self.embedder = docs, vectors, embedder
        self.index = HybridIndex([d.search_text() for d in docs], vectors, dense_weight,
                                 sparse_weight)

    @classmethod
    def build(cls, docs: list[Document], embedder, **weights) -> KnowledgeBase:
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise LandfallError(f"knowledge base: document id {dup!r} appears twice")
        return cls(docs, embedder.embed([d.key_text() for d in docs]), embedder, **weights)

    def search(self, queries: list[str], k: int, exclude=None, vectors=None):
        """(document, hit) pairs, best first, for each query."""
        if vectors is None:
            vectors = self.embedder.embed(queries)
        hits = self.index.search(vectors, queries, k, exclude)
        return [[(self.docs[h.index], h) for h in row] for row in hits]

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / DOCS, "".join(json.dumps(asdict(d), ensure_ascii=False) + "\n"
                                          for d in self.docs))
        with atomic_path(folder / VECTORS) as tmp:
            save_file({"vectors": np.ascontiguousarray(self.vectors)}, str(tmp))

    @classmethod
    def load(cls, folder: str | Path, embedder, **weights) -> KnowledgeBase:
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / DOCS).is_file() or not (folder / VECTORS).is_file():
            raise LandfallError(f"{folder}: not a knowledge base ({DOCS} and {VECTORS})")
        docs = [Document(**d) for d in map(json.loads, (folder / DOCS).read_text(
            encoding="utf-8").splitlines()) if d]
        vectors = load_file(str(folder / VECTORS))["vectors"]
        if len(vectors) != len(docs):
            raise LandfallError(f"{folder}: {len(docs)} documents but {len(vectors)} vectors "
                                "(rebuild with `landfall assistant add-docs`)")
        return cls(docs, vectors, embedder, **weights)

    def add(self, new: list[Document]) -> KnowledgeBase:
        """A knowledge base with ``new`` appended (only they are embedded)."""
        known = {d.id for d in self.docs}
        clash = [d.id for d in new if d.id in known]
        if clash:
            raise LandfallError(f"knowledge base: document id {clash[0]!r} is already there")
        vectors = self.embedder.embed([d.key_text() for d in new])
        return KnowledgeBase(self.docs + new, np.concatenate([self.vectors, vectors]),
                             self.embedder, self.index.dense_weight, self.index.sparse_weight)


def add_documents(run_dir: str | Path, files: list[str | Path]) -> dict:
    """Add the documents of ``files`` to the assistant ``run_dir``'s knowledge base: every
    file is read (and refused whole, naming the file, line and field, if one line is bad)
    before anything is written; only the new documents are embedded; nothing is retrained."""
    from landfall.apps.assistant.manifest import Manifest
    from landfall.inference.embed import Embedder

    manifest = Manifest.read(run_dir)
    new = [doc for f in files for doc in read_documents(f)]
    r = manifest.config().retrieval
    kb = KnowledgeBase.load(Path(run_dir) / "knowledge", Embedder(r.embedder),
                            dense_weight=r.dense_weight, sparse_weight=r.sparse_weight)
    before = len(kb.docs)
    kb = kb.add(new)
    kb.save(Path(run_dir) / "knowledge")
    return {"output": str(run_dir), "added": len(new), "documents": len(kb.docs),
            "before": before}
