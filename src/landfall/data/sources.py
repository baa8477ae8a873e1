"""Where the example data sets come from: ``$LANDFALL_DATA`` or their public source."""

from __future__ import annotations

import os
import tarfile
import urllib.request
from pathlib import Path

from landfall.errors import LandfallError
from landfall.hub import cache_dir
from landfall.runs import atomic_path

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
BANKING77_URL = ("https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/"
                 "banking_data/train.csv")


def imdb_train() -> str:
    """IMDb's labelled training reviews: ``$LANDFALL_DATA/imdb/train.jsonl.gz`` if set, else the
    public aclImdb archive, downloaded once into the cache (the reader takes its folder)."""
    root = os.environ.get("LANDFALL_DATA")
    if root:
        path = Path(root) / "imdb" / "train.jsonl.gz"
        if not path.exists():
            raise LandfallError(f"{path}: not found (LANDFALL_DATA={root})")
        return str(path)
    target = cache_dir() / "data" / "aclImdb"
    if not (target / "train").is_dir():
        _download_imdb(target)
    return str(target)


def _download_imdb(target: Path) -> None:
    archive = cache_dir() / "data" / "aclImdb_v1.tar.gz"
    try:
        if not archive.exists():
            with atomic_path(archive) as tmp:
                urllib.request.urlretrieve(IMDB_URL, tmp)  # noqa: S310  # fixed https URL  # nosec B310
        with atomic_path(target) as tmp, tarfile.open(archive) as tar:
            tar.extractall(tmp.parent / "x", filter="data")
            (tmp.parent / "x" / "aclImdb").rename(tmp)
    except OSError as exc:
        raise LandfallError(
            f"IMDb download from {IMDB_URL} failed ({exc}); set LANDFALL_DATA to a folder "
            "holding imdb/train.jsonl.gz"
        ) from None


def banking77_train() -> str:
    """BANKING77's training queries (columns ``text,category``):
    ``$LANDFALL_DATA/banking77/train.csv`` if set, else the authors' CSV, downloaded once into
    the cache."""
    root = os.environ.get("LANDFALL_DATA")
    if root:
        path = Path(root) / "banking77" / "train.csv"
        if not path.exists():
            raise LandfallError(f"{path}: not found (LANDFALL_DATA={root})")
        return str(path)
    target = cache_dir() / "data" / "banking77" / "train.csv"
    if not target.exists():
        try:
            with atomic_path(target) as tmp:
                urllib.request.urlretrieve(BANKING77_URL, tmp)  # noqa: S310  # fixed https URL  # nosec B310
        except OSError as exc:
            raise LandfallError(
                f"BANKING77 download from {BANKING77_URL} failed ({exc}); set LANDFALL_DATA to "
                "a folder holding banking77/train.csv"
            ) from None
    return str(target)
