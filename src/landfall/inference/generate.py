"""``landfall generate``: a file of requests in, a JSONL file of responses out.

Streamed and resumable like ``predict``: rows go to ``OUTPUT.partial`` chunk by chunk
(fsynced) and the file is renamed at the end; the same command after an interruption
continues after the last complete row. ``OUTPUT.partial.json`` fingerprints what the partial
file belongs to (run, model weights, input, field, generation settings), so a resumed output
never mixes two models or two settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from landfall.config import build_config
from landfall.data.readers import read_texts
from landfall.errors import DataError
from landfall.inference import resume
from landfall.inference.chunks import Engine, local
from landfall.inference.loading import load_generation_run, run_config
from landfall.tasks.causal_lm.config import GenerateConfig
from landfall.utils.progress import progress_bar

CHUNK = 64  # prompts per chunk: progress and resume granularity


class ChunkGenerator:
    """The run's generator: one chunk of prompts (token ids) in, its JSONL rows and new-token
    count out (built once per process, or once per Ray actor: ``inference.chunks``)."""

    def __init__(self, run_dir: str, settings: dict, generator=None) -> None:
        self.generator = generator or load_generation_run(run_dir)
        self.settings = GenerateConfig(**settings)

    def __call__(self, prompts: list[list[int]], lines: list[int]) -> tuple[str, int]:
        outs = self.generator.generate_ids(prompts, self.settings)
        rows = "".join(json.dumps({"line": line, "response": g.text,
                                   "prompt_tokens": g.prompt_tokens,
                                   "new_tokens": g.new_tokens, "finish": g.finish}) + "\n"
                       for line, g in zip(lines, outs, strict=True))
        return rows, sum(g.new_tokens for g in outs)


def settings_for(run_dir: str | Path, overrides: list[str] | None = None) -> GenerateConfig:
    """The run's ``[generate]`` settings with ``generate.FIELD=VALUE`` overrides, checked."""
    from landfall.errors import ConfigError

    for item in overrides or []:
        if not item.strip().startswith("generate."):
            raise ConfigError(f"--set {item!r}: only generate.* fields apply to generation")
    base = dataclasses.asdict(run_config(run_dir).generate)
    return build_config({"generate": base}, overrides, source="generate").generate


def generate_file(run_dir: str | Path, input: str | Path, output: str | Path, *,
                  text_field: str | None = None, overrides: list[str] | None = None,
                  engine: Engine = local) -> dict:
    """Write a response for every request of ``input`` (rows in input order):
    ``{"line", "response", "prompt_tokens", "new_tokens", "finish"}``. ``engine`` says where
    the chunks are generated (``inference.chunks``; ``landfall.scale.ray_batch`` for Ray)."""
    run_dir, input, output = Path(run_dir), Path(input), Path(output)
    settings = settings_for(run_dir, overrides)
    cfg = run_config(run_dir)
    field = text_field or cfg.chat.request_field
    generator = load_generation_run(run_dir)  # refuses runs of other tasks first
    examples = read_texts(input, text_field=field)
    prompts = []
    for ex in examples:  # every prompt is checked before anything is written
        ids = generator.prompt_ids(ex.text)
        try:
            generator.check_prompt(ids, settings)
        except Exception as exc:
            raise DataError(str(exc).removeprefix("prompt: "), path=ex.source, line=ex.line,
                            field=field) from None
        prompts.append(ids)
    partial, meta = resume.paths(output)
    done = resume.start(input, output, lambda: resume.fingerprint(
        run_dir, input, field=field, settings=dataclasses.asdict(settings)))
    new_tokens = 0
    chunks = ({"prompts": prompts[s:s + CHUNK], "lines": [e.line for e in examples[s:s + CHUNK]]}
              for s in range(done, len(examples), CHUNK))
    work = {"run_dir": str(run_dir), "settings": dataclasses.asdict(settings)}
    if engine is local:  # the generator that checked the prompts above does the work
        results = local(ChunkGenerator, {**work, "generator": generator}, chunks)
    else:  # each actor loads its own
        results = engine(ChunkGenerator, work, chunks)
    with open(partial, "ab") as fh, progress_bar(total=len(examples), initial=done,
                                                 desc="generating", unit="prompt") as bar:
        for rows, n_new in results:
            fh.write(rows.encode())
            fh.flush()
            os.fsync(fh.fileno())
            new_tokens += n_new
            bar.update(rows.count("\n"))
    os.replace(partial, output)
    meta.unlink(missing_ok=True)
    return {"n": len(examples), "output": str(output), "resumed_from": done,
            "new_tokens": new_tokens}
