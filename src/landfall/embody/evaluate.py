"""How well a parser commands the world: parse exact match and grounded success.

Two sources: the environments' own missions (``levels`` x ``episodes``, seeds from 1,000,000:
never trained on) and a file of free-form commands (``{"level", "seed", "command"}`` a line;
other fields ignored, except ``policy`` and ``expect`` (refuse / accept), which score the
shield). Grounded success is the world's own check on its own mission after executing our
parse of the command. Writes ``eval.json`` and ``episodes.jsonl`` under ``output``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from landfall import runs
from landfall.embody.execute import run_plan
from landfall.embody.sensors import describe
from landfall.embody.shield import Shield, parse_policy
from landfall.embody.world import make_env, reset
from landfall.errors import LandfallError
from landfall.tasks.command_parser.data import EVAL_SEED
from landfall.tasks.command_parser.grammar import from_instr, intent


def _judge(env, level: str, seed: int, result, shield: Shield, cache: dict | None,
           t0: float | None = None) -> dict:
    """Shield and execute a parse in the world ``level``/``seed`` (reset here) and take the
    world's own verdict on its own mission. Executions are deterministic given (level, seed,
    plan, policy), so ``cache`` (a dict, or None) may hold them across systems."""
    key = None
    if cache is not None and result.plan is not None:
        rules = ";".join(r.text for r in shield.rules)
        key = f"{level}|{seed}|{result.plan.surface()}|{rules}|{shield.max_steps}"
        if key in cache:
            return dict(cache[key], cached=True)
    reset(env, seed)
    t0 = time.perf_counter() if t0 is None else t0
    verdict = shield.check(result.plan, env, result.error)
    rec = {"refused": not verdict.ok, "refusal": verdict.reasons,
           "refusal_kind": verdict.kind}
    if verdict.ok:
        run = run_plan(env, verdict.grounded.instrs, max_steps=shield.max_steps)
        rec.update(status=run.status, steps=run.steps, success=run.world_success,
                   first_action_s=(run.first_action_at - t0) if run.first_action_at else None)
    else:
        rec.update(status="refused", steps=0, success=False, first_action_s=None)
    if key is not None:
        cache[key] = rec
    return rec


def _parse_all(parser, commands: list[str], sensors: list[str]) -> tuple[list, float]:
    t0 = time.perf_counter()
    results = parser.parse_batch(commands, sensors)
    return results, (time.perf_counter() - t0) / max(1, len(commands))


def _records(parser, envs: dict, items: list[dict], shields: list[Shield],
             cache: dict | None, progress) -> list[dict]:
    """items: level, seed, command, mission, gold, sensors."""
    results, per = _parse_all(parser, [i["command"] for i in items],
                              [i["sensors"] for i in items])
    records = []
    for item, result, shield in zip(items, results, shields, strict=True):
        rec = {"level": item["level"], "seed": item["seed"], "command": item["command"],
               "mission": item["mission"],
               "plan": result.plan.surface() if result.plan else "",
               "parse_exact": bool(result.plan is not None
                                   and result.plan.key() == item["gold"].key()),
               "parse_s": per}
        rec["intent_match"] = bool(result.plan is not None
                                   and intent(result.plan) == intent(item["gold"]))
        if getattr(result, "error", ""):
            rec["parse_error"] = result.error
        judged = _judge(envs[item["level"]], item["level"], item["seed"], result, shield, cache)
        if judged.get("first_action_s") is not None and not judged.get("cached"):
            judged["first_action_s"] += per  # parsing was batched: its share per command
        rec.update(judged)
        # a wrong action executed: the agent moved on a plan that is not what was asked
        # (the command's intent = the world's own mission), whatever the world then said
        rec["wrong_action"] = bool(not rec["refused"] and not rec["intent_match"])
        for extra in ("expect", "kind", "policy"):
            if extra in item:
                rec[extra] = item[extra]
        records.append(rec)
        if progress:
            progress(rec)
    return records


def _item(env, level: str, seed: int, command: str | None = None) -> dict:
    reset(env, seed)
    u = env.unwrapped
    return {"level": level, "seed": seed, "command": u.mission if command is None else command,
            "mission": u.mission, "gold": from_instr(u.instrs), "sensors": describe(env)}


def _summary(records: list[dict], key: str = "level") -> dict:
    def figures(rs):
        lat = [r["first_action_s"] for r in rs if r.get("first_action_s") is not None]
        return {"episodes": len(rs),
                "success_rate": sum(r["success"] for r in rs) / max(1, len(rs)),
                "parse_exact_match": sum(r["parse_exact"] for r in rs) / max(1, len(rs)),
                "refused": sum(r["refused"] for r in rs),
                "executed": sum(not r["refused"] for r in rs),
                # executed plans that are not the command's intent (goal: 0)
                "wrong_actions": sum(r.get("wrong_action", False) for r in rs),
                "wrong_actions_world_failed": sum(r.get("wrong_action", False)
                                                  and not r["success"] for r in rs),
                "first_action_s_median": statistics.median(lat) if lat else None,
                "parse_s_median": statistics.median(r["parse_s"] for r in rs) if rs else None}

    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r[key], []).append(r)
    return {**figures(records), "levels": {k: figures(v) for k, v in groups.items()}}


def _shield_scores(records: list[dict]) -> dict | None:
    scored = [r for r in records if r.get("expect") in ("refuse", "accept")]
    if not scored:
        return None
    tp = sum(r["refused"] and r["expect"] == "refuse" for r in scored)
    fp = sum(r["refused"] and r["expect"] == "accept" for r in scored)
    fn = sum(not r["refused"] and r["expect"] == "refuse" for r in scored)
    tn = sum(not r["refused"] and r["expect"] == "accept" for r in scored)
    by_kind: dict[str, dict] = {}
    for r in scored:
        if r["expect"] == "refuse":
            k = by_kind.setdefault(r.get("kind", "?"), {"n": 0, "refused": 0})
            k["n"] += 1
            k["refused"] += int(r["refused"])
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "refuse_expected": tp + fn,
            "accept_expected": fp + tn, "recall_by_kind": by_kind}


def _write(output: Path | None, result: dict, records: list[dict]) -> dict:
    if output is not None:
        output = Path(output)
        runs.write_text(output / "episodes.jsonl", "".join(runs.json_line(r) for r in records))
        runs.write_json(output / "eval.json", result)
    return result


def evaluate_missions(parser, levels: list[str], episodes: int, output: Path | None = None,
                      *, seed: int = EVAL_SEED, shield: Shield | None = None,
                      cache: dict | None = None, progress=None) -> dict:
    """The environments' own missions, ``episodes`` per level from ``seed`` on."""
    shield = shield or Shield()
    envs = {level: make_env(level) for level in levels}
    records = []
    for level in levels:
        items = [_item(envs[level], level, seed + k) for k in range(episodes)]
        records += _records(parser, envs, items, [shield] * len(items), cache, progress)
    result = {"system": getattr(parser, "name", "parser"), "source": "missions",
              "seeds": [seed, seed + episodes - 1], **_summary(records)}
    return _write(output, result, records)


def read_commands(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise LandfallError(f"{path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LandfallError(f"{path}:{n}: not JSON ({e.msg})") from e
        for name, typ in (("level", str), ("seed", int), ("command", str)):
            if not isinstance(row.get(name), typ):
                raise LandfallError(f"{path}:{n}: field {name!r} must be a {typ.__name__}")
        rows.append(row)
    return rows


def evaluate_commands(parser, path: str | Path, output: Path | None = None, *,
                      shield: Shield | None = None, cache: dict | None = None,
                      progress=None) -> dict:
    """Free-form commands; grounded success = the world's own check on its own mission."""
    rows = read_commands(path)
    default = shield or Shield()
    envs = {lvl: make_env(lvl) for lvl in sorted({r["level"] for r in rows})}
    items, shields = [], []
    for row in rows:
        item = _item(envs[row["level"]], row["level"], row["seed"], row["command"])
        item.update({k: row[k] for k in ("expect", "kind", "policy") if k in row})
        items.append(item)
        shields.append(Shield(parse_policy(row["policy"]), dry_run=default.dry_run,
                              max_steps=default.max_steps) if row.get("policy") else default)
    records = _records(parser, envs, items, shields, cache, progress)
    result = {"system": getattr(parser, "name", "parser"), "source": str(path),
              **_summary(records)}
    scores = _shield_scores(records)
    if scores:
        result["shield"] = scores
    return _write(output, result, records)
