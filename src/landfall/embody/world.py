"""Grounding: which objects of the world each description of a plan picks.

``ground(plan, env)`` builds minigrid's instruction tree for the plan and resets it against
the world as it is now (locations are relative to the agent's current pose), so every object
description knows its candidate objects. A description with "the" must pick exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from landfall.tasks.command_parser.data import make_env, reset
from landfall.tasks.command_parser.grammar import Act, Obj, Plan, Seq, stages, to_instr

__all__ = ["Grounded", "ground", "make_env", "reset", "describe_obj", "walk_descs"]


def describe_obj(o: Obj) -> str:
    return o.surface()


@dataclass
class Grounded:
    plan: Plan
    instrs: list  # minigrid's instruction trees (stages, executed in order), reset
    # (action, role, description, ObjDesc) for every object description, in plan order
    descs: list[tuple] = field(default_factory=list)


def walk_descs(plan: Plan, instr) -> list[tuple]:
    """Pairs every Obj of ``plan`` with its ObjDesc in ``instr`` (same shape)."""
    if isinstance(plan, Seq):
        return walk_descs(plan.a, instr.instr_a) + walk_descs(plan.b, instr.instr_b)
    if plan.verb == "putnext":
        return [(plan, "move", plan.obj, instr.desc_move),
                (plan, "fixed", plan.fixed, instr.desc_fixed)]
    return [(plan, "target", plan.obj, instr.desc)]


def ground(plan: Plan, env) -> Grounded:
    """The plan's instruction trees (one per stage), all reset against ``env`` as it is now
    (its candidates found, locations relative to the agent's pose at the command)."""
    parts = stages(plan)
    instrs = [to_instr(p) for p in parts]
    descs = []
    for part, instr in zip(parts, instrs, strict=True):
        instr.reset_verifier(env.unwrapped)
        descs += walk_descs(part, instr)
    return Grounded(plan, instrs, descs)


def candidates(desc) -> list[tuple[object, tuple[int, int]]]:
    return list(zip(desc.obj_set, [tuple(int(x) for x in p) for p in desc.obj_poss],
                    strict=False))


def where(obj) -> str:
    pos = getattr(obj, "cur_pos", None) or getattr(obj, "init_pos", None)
    return f"({int(pos[0])},{int(pos[1])})" if pos is not None else "(carried)"


def is_act(x) -> bool:
    return isinstance(x, Act)
