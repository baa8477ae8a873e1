"""The ``landfall`` command, generated from the verbs table (``landfall.api.VERBS``).

Each verb becomes one command whose options are the fields of its arguments dataclass, with
their help; the config fields the verb reads (``--set section.field=value``) are listed in its
``--help``; ``serve``'s flags are its config section's fields. This module only parses and
prints: what a command does is the Python API's.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from landfall.api import VERBS, Verb
from landfall.config import field_help, sections
from landfall.errors import LandfallError

app = typer.Typer(
    help="Landfall: take a pretrained transformer through its life cycle: train (classify, "
         "masked-LM, causal-LM), evaluate, predict, generate, compress, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(stderr=True)


@app.callback()
def _setup() -> None:
    from landfall.utils.quiet import quiet_transformers

    quiet_transformers()


def _fail(exc: BaseException) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


# --- printers: what each command shows of its result ----------------------------------------


def _show_training(result: dict, a: Any) -> None:
    if not result or os.environ.get("LANDFALL_WORKER"):  # a worker of a distributed run:
        return  # its launcher (or, under plain torchrun, rank 0) reports
    m = result.get("validation") or {}
    run_dir = getattr(a, "resume", None) if isinstance(getattr(a, "resume", None), Path) \
        else getattr(a, "output", None)
    if "heldout" in result:  # masked-LM pretraining
        h = result["heldout"]
        if h["perplexity"] is not None:
            print(f"held-out perplexity {h['perplexity']:.2f} "
                  f"(before training {h['initial_perplexity']:.2f})")
        print(f"model: {Path(run_dir) / 'model'}")
        return
    if "rougeL" in m:
        _show_generation(m)
    elif "accuracy" in m:
        line = f"validation accuracy {m['accuracy']:.2%}  macro-F1 {m['macro_f1']:.4f}"
        if result.get("baseline"):
            line += f"  (baseline {result['baseline']['metrics']['accuracy']:.2%})"
        print(line)
        if result.get("oos"):
            _show_oos(result["oos"])
    else:
        print(json.dumps(m))
    if result.get("train", {}).get("params_before"):
        t = result["train"]
        print(f"parameters {t['params_before'] / 1e6:.2f} M -> {t['total_params'] / 1e6:.2f} M")
    if run_dir is not None:
        print(f"report: {Path(run_dir) / 'report.md'}")
    if result.get("next_steps"):
        print("\nTry next on this run (`source .venv/bin/activate` first if `landfall` is not "
              "on your PATH):")
        for line in result["next_steps"]:
            print(f"  {line}")


def _show_generation(m: dict) -> None:
    table = Table("system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "cosine", "words")
    for name, r in m["systems"].items():
        table.add_row(name, f"{r['rouge1']:.3f}", f"{r['rouge2']:.3f}", f"{r['rougeL']:.3f}",
                      f"{r['similarity']:.3f}", f"{r['length_words']['mean']:.0f}")
    Console().print(table)


def _show_oos(oos: dict) -> None:
    v = oos.get("validation", oos)
    print(f"out-of-scope ({oos['method']}): in-scope accuracy {v['in_scope_accuracy']:.2%}  "
          f"oos recall {v['oos_recall']:.2%}  oos precision {v['oos_precision']:.2%}")


def _show_evaluate(out: dict, a: Any) -> None:
    if "systems" in out.get("validation", {}):
        _show_generation(out["validation"])
    else:
        m = out["metrics"]
        table = Table("metric", "value")
        for key in ("n", "accuracy", "macro_f1", "ece", "nll"):
            table.add_row(key, f"{m[key]:.4f}" if isinstance(m[key], float) else str(m[key]))
        for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "oos_f1"):
            if out.get("oos"):  # the run has an out-of-scope rule (oos.json)
                table.add_row(key, f"{out['oos'][key]:.4f}")
        Console().print(table)
        if len(m.get("per_class", {})) <= 10:  # a few classes: each one's P/R/F1 (imbalance)
            per = Table("class", "precision", "recall", "F1", "support")
            for name, s in m["per_class"].items():
                per.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                            f"{s['f1']:.3f}", str(s["support"]))
            Console().print(per)
    print(f"written: {out['output']}")


def _show_compress(summary: dict, a: Any) -> None:
    generator = any("rougeL" in r for r in summary["rows"])
    if generator:  # a causal-LM run: quality and single-stream speed
        table = Table("method", "MB", "tokens/s 1", "TTFT ms", "tokens/s many", "ROUGE-L",
                      "drop")
        cells = lambda r: (f"{r['mb_on_disk']:.1f}", f"{r['tokens_per_s_1']:.1f}",  # noqa: E731
                           f"{r['ttft_ms']:.0f}", f"{r['tokens_per_s_many']:.1f}",
                           f"{r['rougeL']:.4f}", f"{r['rougeL_drop']:+.2f}")
    else:
        table = Table("method", "MB", "ms b1", "docs/s b32", "accuracy", "drop")
        cells = lambda r: (f"{r['mb_on_disk']:.1f}", f"{r['latency_ms_b1']:.1f}",  # noqa: E731
                           f"{r['docs_per_s_b32']:.1f}", f"{r['accuracy']:.2%}",
                           f"{r['drop_points']:+.2f}")
    for r in summary["rows"]:
        if "error" in r:
            table.add_row(r["method"], "failed", *[""] * (len(table.columns) - 3),
                          r["error"][:60])
            continue
        style = "bold green" if r["method"] == summary["chosen"] else None
        table.add_row(r["method"], *cells(r), style=style)
    Console().print(table)
    print(f"chosen: {summary['chosen']} -> {a.output}  "
          f"(table: {Path(a.output) / 'compress' / 'report.md'})")


def _show_audit(record: dict, a: Any) -> None:
    table = Table("check", "figure", "threshold", "result")
    style = {True: "green", False: "bold red", None: "dim"}
    for s in record["sections"]:
        table.add_row(s["title"], s["figure"], s["threshold"],
                      {True: "PASS", False: "FAIL", None: "n/a"}[s["passed"]],
                      style=style[s["passed"]])
    Console(width=160).print(table)
    for name, reason in record.get("waived", {}).items():
        print(f"waived: {name} ({reason})")
    if record.get("missing"):
        print(f"missing required checks: {', '.join(record['missing'])} (serve --require-audit "
              "refuses this audit until each is run or waived: audit.waive)")
    print(f"audit {'PASSED' if record['passed'] else 'FAILED'}: {Path(a.output) / 'report.md'}")
    if not record["passed"]:
        raise typer.Exit(1)


def _show_explain(r: dict, a: Any) -> None:
    top = sorted(zip(r["tokens"], r["scores"], strict=True), key=lambda t: -abs(t[1]))[:8]
    print(f"{r['label']} (p={r['prob']:.3f}); convergence delta {r['delta']:.2e}")
    print("strongest tokens: " + ", ".join(f"{t} {s:+.3f}" for t, s in top))
    print(f"written: {Path(r['output']) / 'explain.html'}, explain.png, explain.json")


def _show_clean(r: dict, a: Any) -> None:
    ents = ", ".join(f"{k} {v}" for k, v in r["entities"].items()) or "none"
    print(f"{r['rows']} rows, {r['rows_with_pii']} with PII ({ents}); {r['rows_written']} "
          f"written to {r['output']} ({r['mode']})")


SHOW = {
    "audit": _show_audit, "explain": _show_explain, "data clean": _show_clean,
    "train": _show_training, "pretrain": _show_training, "demo": _show_training,
    "prune": _show_training, "distill": _show_training,
    "evaluate": _show_evaluate, "compress": _show_compress,
    "predict": lambda out, a: print(f"{out['n']} predictions written to {out['output']}"),
    "generate": lambda out, a: print(f"{out['n']} responses ({out['new_tokens']} new tokens) "
                                     f"written to {out['output']}"),
    "ensemble": lambda out, a: _show_ensemble(out),
    "export-merged": lambda out, a: print(f"merged model written to {Path(out) / 'model'}"),
    "export-onnx": lambda out, a: print(f"ONNX model ({a.quantize}) written to "
                                        f"{Path(out) / 'model'}"),
    "embody run": lambda out, a: _show_embody_run(out),
    "embody eval": lambda out, a: _show_embody_eval(out, a),
}


def _show_ensemble(out: dict) -> None:
    for w in out["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"ensemble of {len(out['members'])} runs (weights "
          f"{', '.join(f'{w:.3g}' for w in out['weights'])}) written to {out['output']}")


def _show_embody_run(out: dict) -> None:
    print(f"mission of {out['level']} seed {out['seed']}: {out['mission']}")
    print(f"plan: {out['plan'] or '-'}")
    if out["refused"]:
        print("REFUSED: " + "; ".join(out["refusal"]))
    else:
        print(f"executed: {out['status']} in {out['steps']} steps; the world's own check: "
              f"{'success' if out['world_success'] else 'not done'}")
    for note in out.get("notes", []):
        print(f"note: {note}")
    for key in ("gif", "png"):
        if out.get(key):
            print(f"{key}: {out[key]}")


def _show_embody_eval(out: dict, a: Any) -> None:
    print(f"{out['system']} on {out['source']}: grounded success {out['success_rate']:.4f}, "
          f"parse exact match {out['parse_exact_match']:.4f} ({out['episodes']} episodes)")
    for level, m in out["levels"].items():
        print(f"  {level}: success {m['success_rate']:.4f}, exact "
              f"{m['parse_exact_match']:.4f}, refused {m['refused']} / {m['episodes']}")
    if "shield" in out:
        s = out["shield"]
        print(f"shield: precision {s['precision']:.4f}, recall {s['recall']:.4f}")
    print(f"written to {a.output}")


# --- the generator --------------------------------------------------------------------------


def _cli_type(hint: Any) -> Any:
    """The type typer parses a field as (Any = free text; Optional[X] stays Optional[X])."""
    return str if hint is Any else hint


def _epilog(verb: Verb) -> str:
    if not verb.sections:
        return ""
    lines = ["Config fields (in the --config file or as --set section.field=value):", ""]
    for name, typ, default, help_ in field_help():
        if name.split(".")[0] in verb.sections:
            lines.append(f"  {name} ({typ}, default {json.dumps(default)}): {help_}")
    return "\n\n".join(lines)  # click folds single newlines; paragraphs keep one per field


def _section_flags(section: str) -> list[inspect.Parameter]:
    """``--port`` for ``serve.port``: one vocabulary for a section's flags and fields."""
    cls = sections()[section]
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        opt = typer.Option(f"--{f.name.replace('_', '-')}", metavar=f.name.upper(),
                           help=f"{f.metadata['help']} ({section}.{f.name}, default "
                                f"{json.dumps(f.default)})")
        out.append(inspect.Parameter(f"{section}__{f.name}", inspect.Parameter.KEYWORD_ONLY,
                                     default=None, annotation=Annotated[hints[f.name] | None,
                                                                        opt]))
    return out


def _command(verb: Verb):
    hints = typing.get_type_hints(verb.args)
    params = []
    for f in dataclasses.fields(verb.args):
        if not f.metadata.get("cli", True):
            continue
        typ = _cli_type(hints[f.name])
        required = f.metadata.get("required", False)
        default = ... if required else f.default
        if f.metadata.get("positional"):
            info = typer.Argument(help=f.metadata["help"], show_default=not required,
                                  metavar=f.name.upper())
        else:
            flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
            names = [flag] if hints[f.name] is not bool else \
                [f"{flag}/--no-{flag.removeprefix('--')}"]
            meta = {"--set": "SECTION.FIELD=VALUE", "--config": "FILE"}.get(flag, f.name.upper())
            info = typer.Option(*names, help=f.metadata["help"],
                                metavar=None if hints[f.name] is bool else meta)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=inspect.Parameter.empty if required
                                        else default, annotation=Annotated[typ, info]))
    flags = _section_flags(verb.flags_from) if verb.flags_from else []

    def command(**kwargs: Any) -> None:
        given = {k: kwargs.pop(k) for k in list(kwargs) if "__" in k}
        sets = [f"{k.replace('__', '.')}={v}" for k, v in given.items() if v is not None]
        if sets:
            kwargs["overrides"] = [*(kwargs.get("overrides") or []), *sets]
        args = verb.args(**kwargs)
        if verb.name == "serve":
            console.print(f"serving {args.run_dir} (docs at /docs)", highlight=False)
        try:
            result = verb.run(args)
        except LandfallError as exc:
            _fail(exc)
        except OSError as exc:  # a full disk, a missing permission: one line, exit 2
            _fail(f"{type(exc).__name__}: {exc}")
        if verb.name in SHOW:
            SHOW[verb.name](result, args)

    command.__signature__ = inspect.Signature([*params, *flags])
    command.__name__ = verb.py_name
    command.__doc__ = verb.help
    return command


GROUP_HELP = {
    "data": "Data files: clean (redact or drop personal data).",
    "embody": "Command an agent in a simulated world (BabyAI): run one command, evaluate.",
}
_groups: dict[str, typer.Typer] = {}
for _verb in VERBS:
    # a two-word verb ("embody run") is a command of a sub-app ("landfall embody run ...")
    *_group, _cmd = _verb.name.split(" ")
    _target = app
    if _group:
        if _group[0] not in _groups:
            _groups[_group[0]] = typer.Typer(help=GROUP_HELP.get(_group[0]),
                                             no_args_is_help=True, rich_markup_mode=None)
            app.add_typer(_groups[_group[0]], name=_group[0])
        _target = _groups[_group[0]]
    _target.command(_cmd, help=_verb.help, epilog=_epilog(_verb) or None)(_command(_verb))


@app.command("config")
def show_config(
    config: Annotated[Path | None, typer.Option(help="Show this file resolved.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field: "
                                                   "section.field=value (repeatable).")] = None,
) -> None:
    """List every config field with its default and help (or a file resolved, as TOML)."""
    from landfall.config import load_config

    if config or set_:
        import tomli_w

        try:
            print(tomli_w.dumps(load_config(config, set_).to_dict()))
        except LandfallError as exc:
            _fail(exc)
        return
    table = Table("field", "type", "default", "help")
    for name, typ, default, help_ in field_help():
        table.add_row(name, typ, json.dumps(default), help_)
    Console(width=160).print(table)


@app.command("tasks")
def show_tasks() -> None:
    """List the task plugins, what their runs support and how their model loads."""
    from landfall.tasks import get_task, task_names

    table = Table("task", "what it learns", "model class", "verbs")
    for name in task_names():
        t = get_task(name)
        table.add_row(name, t.summary, t.auto_class, ", ".join(sorted(t.verbs)))
    Console(width=160).print(table)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
