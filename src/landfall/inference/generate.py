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
from landfall.inference.loading import load_generation_run, run_config
from landfall.tasks.causal_lm.config import GenerateConfig
from landfall.utils.progress import progress_bar

CHUNK = 64  # prompts per chunk: progress and resume granularity


def settings_for(run_dir: str | Path, overrides: list[str] | None = None) -> GenerateConfig:
    """The run's ``[generate]`` settings with ``generate.FIELD=VALUE`` overrides, checked."""
    from landfall.errors import ConfigError

    for item in overrides or []:
        if not item.strip().startswith("generate."):
            raise ConfigError(f"--set {item!r}: only generate.* fields apply to generation")
    base = dataclasses.asdict(run_config(run_dir).generate)
    return build_config({"generate": base}, overrides, source="generate").generate


def generate_file(run_dir: str | Path, input: str | Path, output: str | Path, *,
                  text_field: str | None = None, overrides: list[str] | None = None) -> dict:
    """Write a response for every request of ``input`` (rows in input order):
    ``{"line", "response", "prompt_tokens", "new_tokens", "finish"}``."""
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
    with open(partial, "ab") as fh, progress_bar(total=len(examples), initial=done,
                                                 desc="generating", unit="prompt") as bar:
        for start in range(done, len(examples), CHUNK):
            chunk = examples[start:start + CHUNK]
            outs = generator.generate_ids(prompts[start:start + CHUNK], settings)
            fh.write("".join(json.dumps({"line": ex.line, "response": g.text,
                                         "prompt_tokens": g.prompt_tokens,
                                         "new_tokens": g.new_tokens, "finish": g.finish}) + "\n"
                             for ex, g in zip(chunk, outs, strict=True)).encode())
            fh.flush()
            os.fsync(fh.fileno())
            new_tokens += sum(g.new_tokens for g in outs)
            bar.update(len(chunk))
    os.replace(partial, output)
    meta.unlink(missing_ok=True)
    return {"n": len(examples), "output": str(output), "resumed_from": done,
            "new_tokens": new_tokens}
