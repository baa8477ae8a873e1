"""A small typed client for ``landfall serve`` (httpx underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Classification:
    label: str
    probs: dict[str, float]
    windows: int
    oos_score: float | None = None


class ServerError(Exception):
    """A refused request: the HTTP status, the server's message and its Retry-After."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail, self.retry_after = status, detail, retry_after


class Client:
    """``Client("http://127.0.0.1:8000").classify(["great film"])[0].label``"""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            retry = r.headers.get("retry-after")
            raise ServerError(r.status_code, str(detail), float(retry) if retry else None)
        return r

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        r = self._check(self._http.post("/v1/classify", json={"texts": list(texts)}))
        return [Classification(**row) for row in r.json()["results"]]

    def model(self) -> dict:
        return self._check(self._http.get("/v1/model")).json()

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def metrics(self) -> str:
        return self._check(self._http.get("/metrics")).text
