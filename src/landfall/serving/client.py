"""A small typed client for ``landfall serve`` (httpx underneath)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Classification:
    label: str
    probs: dict[str, float]
    windows: int
    oos_score: float | None = None
    guard: dict | None = None  # the guard's verdict when the server flags (serve.guard)


@dataclass(frozen=True)
class Generated:
    """A written response (``/v1/generate``)."""

    text: str
    finish: str  # stop, length
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    guard: dict | None = None  # the guard's verdict when the server flags (serve.guard)


@dataclass(frozen=True)
class Piece:
    """One event of a streamed response: new text, and at the end how it finished."""

    text: str
    finish: str | None = None
    new_tokens: int | None = None
    guard: dict | None = None  # at the end: the guard's verdict (serve.guard)


class ServerError(Exception):
    """A refused request: the HTTP status, the server's message and its Retry-After."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail, self.retry_after = status, detail, retry_after


class Client:
    """``Client("http://127.0.0.1:8000").classify(["great film"])[0].label``; for a causal-LM
    run ``.generate("Where is my order?").text`` and ``.stream(...)``. OpenAI clients work
    with the same server's ``/v1/chat/completions``."""

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

    def generate(self, prompt: str | Sequence[dict], **settings) -> Generated:
        """A response to ``prompt`` (a request, or chat messages); ``settings`` are
        max_new_tokens, do_sample, temperature, top_p, top_k, stop."""
        r = self._check(self._http.post("/v1/generate", json=_generate_body(prompt, settings)))
        return Generated(**r.json())

    def stream(self, prompt: str | Sequence[dict], **settings) -> Iterator[Piece]:
        """The response as it is written: pieces of text, the last one with ``finish``."""
        body = {**_generate_body(prompt, settings), "stream": True}
        with self._http.stream("POST", "/v1/generate", json=body) as r:
            if r.status_code >= 400:
                r.read()
                self._check(r)
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[len("data: "):])
                if "finish" in event:
                    yield Piece("", event["finish"], event.get("new_tokens"), event.get("guard"))
                    return
                yield Piece(event["text"])

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


def _generate_body(prompt: str | Sequence[dict], settings: dict) -> dict:
    key = "prompt" if isinstance(prompt, str) else "messages"
    return {key: prompt if isinstance(prompt, str) else list(prompt), **settings}
