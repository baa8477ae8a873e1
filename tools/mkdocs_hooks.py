"""MkDocs hooks of Landfall's documentation site (``mkdocs.yml``: ``hooks:``).

Three things no plugin does for us, so they are written here (a few lines each):

- the navigation is built from the pages present: every ``docs/guide/*.md`` is listed (known
  stages first, in the order of a run's life, then any other guide alphabetically), so a guide
  added by anyone appears without editing ``mkdocs.yml`` and a missing one breaks nothing;
- the configuration reference and the CLI reference are rendered at build time from the code
  itself: the config dataclasses (``landfall.config.field_help``: every field's type, default
  and help) and the verbs table (``landfall.api.VERBS``) that the CLI and the Python API are
  generated from, so neither is ever written twice;
- the benchmarks page is ``bench/README.md`` read at build time (with the images it links),
  and the changelog is ``CHANGELOG.md``: included, not copied.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
# document the sources beside this file, whatever landfall the environment has installed
sys.path.insert(0, str(ROOT / "src"))

# Guides in the order of a run's life; any other docs/guide/*.md follows, alphabetically.
GUIDE_ORDER = ["data", "training", "evaluation", "generation", "compression",
               "compress-decoder", "serving", "safety", "audit", "embodiment", "assistant",
               "scale-out"]


def _guides(docs_dir: Path) -> list[str]:
    found = [p.stem for p in (docs_dir / "guide").glob("*.md")]
    rank = {name: i for i, name in enumerate(GUIDE_ORDER)}
    found.sort(key=lambda s: (rank.get(s, len(rank)), s))
    return [f"guide/{s}.md" for s in found]


def on_config(config: Any) -> Any:
    docs_dir = Path(config["docs_dir"])
    config["nav"] = [
        {"Home": "index.md"},
        {"Getting started": "getting-started.md"},
        {"Guides": _guides(docs_dir)},
        {"Reference": [{"Configuration": "reference/config.md"},
                       {"CLI and Python API": "reference/cli.md"}]},
        {"Benchmarks": "bench/index.md"},
        {"Changelog": "changelog.md"},
        {"Development": "development.md"},
    ]
    return config


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    for path in ("bench/README.md", "CHANGELOG.md", "src/landfall"):
        server.watch(str(ROOT / path))
    return server


# --- generated pages ------------------------------------------------------------------------


def _cell(x: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def _default(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if value is None:
        return "–"
    return f"`{json.dumps(value, default=str)}`"


def config_page() -> str:
    import landfall  # noqa: F401  (scans the task plugins: their sections register)
    from landfall.api import VERBS
    from landfall.config import CORE_SECTIONS, field_help

    readers: dict[str, list[str]] = {}
    for verb in VERBS:
        for sec in (*verb.sections, verb.flags_from):
            if sec and verb.name not in readers.setdefault(sec, []):
                readers[sec].append(verb.name)
    by_section: dict[str, list[tuple[str, str, Any, str]]] = {}
    for name, typ, default, help_ in field_help():
        by_section.setdefault(name.split(".")[0], []).append((name, typ, default, help_))
    out = [
        "# Configuration reference",
        "",
        "Generated at build time from the config dataclasses (`landfall.config`, and the "
        "sections each task plugin registers); `landfall config` prints the same table in a "
        "terminal. Every field works in a TOML/YAML file's `[section]` and as "
        "`--set section.field=value`; `${VAR}` in strings is expanded from the environment. "
        "Presets live in `examples/`.",
        "",
        "```toml",
        "[data]",
        'train = "${LANDFALL_DATA}/banking77/train.csv"',
        'label_field = "category"',
        "max_length = 64",
        "",
        "[train]",
        "epochs = 5",
        "lr = 2e-4",
        "```",
        "",
    ]
    for sec, rows in by_section.items():
        owner = "core" if sec in CORE_SECTIONS else "task plugin"
        used = ", ".join(f"[`{v}`](cli.md#{_anchor(v)})" for v in readers.get(sec, []))
        out += [f"## `[{sec}]`", "", f"Section of the {owner}."
                + (f" Read by {used}." if used else ""), "",
                "| field | type | default | help |", "|---|---|---|---|"]
        out += [f"| `{name}` | {typ} | {_cell(_default(default))} | {_cell(help_)} |"
                for name, typ, default, help_ in rows]
        out.append("")
    return "\n".join(out)


def _anchor(verb_name: str) -> str:
    return "landfall-" + verb_name.replace(" ", "-")


def _flag(f: dataclasses.Field, hint: Any) -> str:
    if f.metadata.get("positional"):
        return f.name.upper()
    flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
    if hint is bool:
        return f"{flag} / --no-{flag.removeprefix('--')}"
    meta = {"--set": "SECTION.FIELD=VALUE", "--config": "FILE"}.get(flag, f.name.upper())
    return f"{flag} {meta}"


def cli_page() -> str:
    import inspect

    import landfall  # noqa: F401
    from landfall import cli
    from landfall.api import VERBS

    out = [
        "# CLI and Python API reference",
        "",
        "Generated at build time from the verbs table (`landfall.api.VERBS`): one entry per "
        "command, with its arguments dataclass. The CLI (`landfall VERB ...`) and the Python "
        "API (`landfall.VERB(...)`, the name with `_` for `-` and spaces) are both generated "
        "from that table, so they take the same arguments. `landfall VERB --help` shows the "
        "same, plus every config field the verb reads.",
        "",
    ]
    for verb in VERBS:
        hints = typing.get_type_hints(verb.args)
        fields = dataclasses.fields(verb.args)
        usage = " ".join(
            f.name.upper() if f.metadata.get("positional")
            else f"{(f.metadata.get('flag') or '--' + f.name.replace('_', '-'))} "
                 f"{f.name.upper()}"
            for f in fields if f.metadata.get("required") and f.metadata.get("cli", True))
        out += [f"## `landfall {verb.name}`", "", verb.help, "",
                f"```\nlandfall {verb.name} {usage}".rstrip() + " [OPTIONS]\n```", "",
                "| argument | default | help |", "|---|---|---|"]
        for f in fields:
            if not f.metadata.get("cli", True):
                continue
            default = "required" if f.metadata.get("required") else _default(f.default)
            out.append(f"| `{_cell(_flag(f, hints[f.name]))}` | {_cell(default)} "
                       f"| {_cell(f.metadata['help'])} |")
        if verb.flags_from:
            out += ["", f"Every field of [`[{verb.flags_from}]`](config.md#{verb.flags_from}) "
                        f"is also a flag: `--max-batch-size` is "
                        f"`{verb.flags_from}.max_batch_size`."]
        if verb.sections:
            secs = ", ".join(f"[`[{s}]`](config.md#{s})" for s in verb.sections)
            out += ["", f"Config sections it reads (`--config` file or `--set`): {secs}."]
        if verb.api:
            params = ", ".join(
                f.name if f.metadata.get("required") else f"{f.name}={f.default!r}"
                for f in fields)
            out += ["", f"Python: `landfall.{verb.py_name}({params})`"]
        out.append("")
    known = {v.name.split(" ")[0] for v in VERBS}
    extra = [c for c in cli.app.registered_commands
             if c.name and c.name not in known and c.callback is not None]
    if extra:
        out += ["## Other commands", ""]
        out += [f"- `landfall {c.name}`: {inspect.getdoc(c.callback).splitlines()[0]}"
                for c in extra]
        out.append("")
    return "\n".join(out)


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def bench_files(config: Any, text: str) -> list[File]:
    """The files ``bench/README.md`` links to (plots), served beside the page."""
    out = []
    for target in sorted(set(_LINK.findall(text))):
        src = (ROOT / "bench" / target).resolve()
        if "://" not in target and src.is_file() and ROOT in src.parents:
            out.append(File.generated(config, f"bench/{target}", abs_src_path=str(src)))
    return out


def on_files(files: Files, config: Any) -> Files:
    bench = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    pages = {
        "reference/config.md": config_page(),
        "reference/cli.md": cli_page(),
        "bench/index.md": bench,
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"),
    }
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    for f in bench_files(config, bench):
        files.append(f)
    return files
