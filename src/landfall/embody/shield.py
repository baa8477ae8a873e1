"""The shield: what the agent refuses, and why, before it moves.

Refused: a command that could not be parsed; one that names an object that is not there;
"the X" where several objects match (ambiguous); putting an object next to itself; an action
the world cannot do (picking up a door, opening a ball); and anything a policy forbids
(``[shield] forbid = "never pick up keys; never open red doors; avoid cell 3,4"``). Policy
rules on objects are checked on the plan's candidates (a "pick up a key" with two keys, one
forbidden, goes for the allowed one); with ``dry_run`` the plan is also executed on a copy of
the world and refused if any step would break the policy (the planner moving a forbidden key
out of the way, crossing a forbidden cell). A refused command never moves the agent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from landfall.embody.world import Grounded, candidates, ground, where
from landfall.errors import ConfigError
from landfall.tasks.command_parser.grammar import COLORS, TYPES, Plan
from landfall.tasks.command_parser.lexicon import words_of

_ACTION_WORDS = {"pick": "pickup", "grab": "pickup", "take": "pickup", "lift": "pickup",
                 "carry": "pickup", "hold": "pickup", "collect": "pickup", "pickup": "pickup",
                 "open": "open", "unlock": "open", "toggle": "open",
                 "go": "goto", "visit": "goto", "approach": "goto", "goto": "goto",
                 "put": "putnext", "place": "putnext", "drop": "putnext", "putnext": "putnext",
                 "touch": "any", "use": "any", "interact": "any"}
_PLURAL = {"balls": "ball", "boxes": "box", "keys": "key", "doors": "door"}
# which rule actions apply to each role a description plays in a plan
_ROLE_ACTIONS = {("goto", "target"): {"goto", "any"}, ("pickup", "target"): {"pickup", "any"},
                 ("open", "target"): {"open", "any"},
                 ("putnext", "move"): {"pickup", "putnext", "any"},
                 ("putnext", "fixed"): {"goto", "putnext", "any"}}


@dataclass(frozen=True)
class Rule:
    text: str
    action: str = "any"  # goto, pickup, open, putnext, any
    color: str | None = None
    type: str | None = None
    cell: tuple[int, int] | None = None

    def forbids(self, action: str, obj) -> bool:
        if self.cell is not None or (self.action != "any" and self.action != action):
            return False
        return ((self.color is None or obj.color == self.color)
                and (self.type is None or obj.type == self.type))


def parse_rule(text: str) -> Rule:
    """'never pick up keys' / 'never open red doors' / 'avoid cell 3,4' / 'touch grey box'."""
    words = words_of(text)
    if "cell" in words or "cells" in words:
        nums = [int(w) for w in words if w.isdigit()]
        if len(nums) != 2:
            raise ConfigError(f"shield.forbid: rule {text!r}: a cell needs two numbers (x,y)")
        return Rule(text.strip(), cell=(nums[0], nums[1]))
    action = next((_ACTION_WORDS[w] for w in words if w in _ACTION_WORDS), "any")
    color = next((w for w in words if w in COLORS or w == "gray"), None)
    color = "grey" if color == "gray" else color
    typ = next((_PLURAL.get(w, w) for w in words if _PLURAL.get(w, w) in TYPES), None)
    if color is None and typ is None:
        raise ConfigError(f"shield.forbid: rule {text!r} names no colour, type or cell")
    return Rule(text.strip(), action, color, typ)


def parse_policy(text: str) -> list[Rule]:
    return [parse_rule(r) for r in text.replace("\n", ";").split(";") if r.strip()]


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why refused
    notes: list[str] = field(default_factory=list)  # what the shield changed or checked
    grounded: Grounded | None = None
    kind: str = ""  # the first refusal's rule: parse, absent, ambiguous, self, invalid, policy


class Shield:
    def __init__(self, rules: list[Rule] | None = None, *, dry_run: bool = True,
                 max_steps: int = 0):
        self.rules = rules or []
        self.dry_run = dry_run
        self.max_steps = max_steps

    @classmethod
    def from_config(cls, cfg) -> Shield:
        return cls(parse_policy(cfg.forbid), dry_run=cfg.dry_run, max_steps=cfg.max_steps)

    def check(self, plan: Plan | None, env, parse_error: str = "") -> Verdict:
        """Whether ``plan`` may run in ``env`` now (nothing in ``env`` moves)."""
        if plan is None:
            return Verdict(False, [f"could not understand the command: {parse_error}"],
                           kind="parse")
        v = Verdict(True)
        for act in plan.actions():
            if act.verb == "pickup" and act.obj.type == "door":
                self._refuse(v, "invalid", "doors cannot be picked up")
            if act.verb == "putnext" and act.obj.type == "door":
                self._refuse(v, "invalid", "doors cannot be carried")
            if act.verb == "open" and act.obj.type != "door":
                self._refuse(v, "invalid", f"only doors can be opened, not "
                             f"{act.obj.surface().split(' ', 1)[1]}")
        if not v.ok:
            return v
        try:
            g = self._ground(plan, env, v)
        except (AssertionError, ValueError) as e:  # a tree minigrid cannot hold
            self._refuse(v, "invalid", f"the plan cannot be executed as given ({e})")
            return v
        v.grounded = g
        if v.ok and self.dry_run and self.rules:
            self._dry_run(plan, env, v)
        return v

    @staticmethod
    def _refuse(v: Verdict, kind: str, why: str) -> None:
        v.ok = False
        v.kind = v.kind or kind
        v.reasons.append(why)

    def _ground(self, plan: Plan, env, v: Verdict | None = None) -> Grounded:
        v = v or Verdict(True)
        g = ground(plan, env)
        for act, role, obj, desc in g.descs:
            phrase = obj.surface().split(" ", 1)[1]
            found = candidates(desc)
            if not found:
                self._refuse(v, "absent", f"there is no {phrase} here")
                continue
            if obj.det == "the" and len(found) > 1:
                self._refuse(v, "ambiguous", f"'the {phrase}' is ambiguous: {len(found)} match, "
                             "at " + ", ".join(where(o) for o, _ in found))
                continue
            actions = _ROLE_ACTIONS[(act.verb, role)]
            allowed = [(o, p) for o, p in found
                       if not any(r.forbids(a, o) for r in self.rules for a in actions)]
            if not allowed:
                rule = next(r for r in self.rules for a in actions if r.forbids(a, found[0][0]))
                self._refuse(v, "policy", f"policy '{rule.text}' forbids this for {phrase}")
                continue
            if len(allowed) < len(found):
                desc.obj_set = [o for o, _ in allowed]
                desc.obj_poss = [p for _, p in allowed]
                v.notes.append(f"{phrase}: {len(found) - len(allowed)} of {len(found)} "
                               "candidates left out by the policy")
        for act, role, obj, desc in g.descs:  # put next to itself
            if role == "fixed" and desc.obj_set:
                move = next(d for a, r, _, d in g.descs if a is act and r == "move")
                if move.obj_set and all(m is f for m in move.obj_set for f in desc.obj_set):
                    self._refuse(v, "self", "cannot put an object next to itself "
                                 f"({obj.surface()} is the object being moved)")
        return g

    def _dry_run(self, plan: Plan, env, v: Verdict) -> None:
        from landfall.embody.execute import run_plan

        twin = copy.deepcopy(env.unwrapped)
        g = self._ground(plan, twin)
        cells = {r.cell: r for r in self.rules if r.cell is not None}

        def monitor(world, action) -> str:
            u = world.unwrapped
            pos = (int(u.agent_pos[0]), int(u.agent_pos[1]))
            if pos in cells:
                return f"policy '{cells[pos].text}': the planner's path crosses cell {pos}"
            if action == u.actions.pickup and u.carrying is not None:
                for r in self.rules:
                    if r.forbids("pickup", u.carrying):
                        return (f"policy '{r.text}': the planner would pick up the "
                                f"{u.carrying.color} {u.carrying.type} on the way")
            if action == u.actions.toggle:
                cell = u.grid.get(*u.front_pos)
                if cell is not None and cell.type == "door" and cell.is_open:
                    for r in self.rules:
                        if r.forbids("open", cell):
                            return (f"policy '{r.text}': the planner would open the "
                                    f"{cell.color} door on the way")
            return ""

        run = run_plan(twin, g.instrs, max_steps=self.max_steps, stop_on_world_done=False,
                       monitor=monitor)
        if run.status == "stopped":
            self._refuse(v, "policy", run.reason)
        else:
            v.notes.append(f"dry run: {run.status} in {run.steps} steps, no policy broken")
