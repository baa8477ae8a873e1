"""BabyAI's instruction trees as plain values: what the command parser produces.

A plan is an ``Act`` (go to / pick up / open / put next to, with object descriptions ``Obj``)
or a ``Seq`` of two plans (``and``, ``before`` = "A, then B", ``after`` = "A after you B").
They convert to and from minigrid's own verifier classes (``to_instr`` / ``from_instr``) and
print as BabyAI's own surface (``surface``). ``key`` is what "exact match" compares: the tree
without determiners (BabyAI's trees have none: "the"/"a" follow from the world).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
TYPES = ("ball", "box", "key", "door")
LOCS = ("front", "behind", "left", "right")
VERBS = ("goto", "pickup", "open", "putnext")
SEQ_KINDS = ("and", "before", "after")


@dataclass(frozen=True)
class Obj:
    type: str | None = None  # None = "object" (any type)
    color: str | None = None
    loc: str | None = None  # relative to the agent's pose when the command is given
    det: str = "a"  # "the": the description must pick exactly one object

    def key(self) -> tuple:
        return (self.type, self.color, self.loc)

    def surface(self) -> str:
        s = self.type or "object"
        if self.color:
            s = f"{self.color} {s}"
        if self.loc == "front":
            s += " in front of you"
        elif self.loc == "behind":
            s += " behind you"
        elif self.loc:
            s += f" on your {self.loc}"
        return f"{self.det} {s}"


@dataclass(frozen=True)
class Act:
    verb: str
    obj: Obj
    fixed: Obj | None = None  # putnext: the object to put ``obj`` next to

    def key(self) -> tuple:
        return (self.verb, self.obj.key(), self.fixed.key() if self.fixed else None)

    def surface(self) -> str:
        if self.verb == "putnext":
            return f"put {self.obj.surface()} next to {self.fixed.surface()}"
        words = {"goto": "go to", "pickup": "pick up", "open": "open"}[self.verb]
        return f"{words} {self.obj.surface()}"

    def objects(self) -> list[Obj]:
        return [self.obj] + ([self.fixed] if self.fixed else [])

    def actions(self) -> list[Act]:
        return [self]


@dataclass(frozen=True)
class Seq:
    kind: str
    a: Act | Seq
    b: Act | Seq

    def key(self) -> tuple:
        return (self.kind, self.a.key(), self.b.key())

    def surface(self) -> str:
        sep = {"and": " and ", "before": ", then ", "after": " after you "}[self.kind]
        return self.a.surface() + sep + self.b.surface()

    def objects(self) -> list[Obj]:
        return self.a.objects() + self.b.objects()

    def actions(self) -> list[Act]:
        return self.a.actions() + self.b.actions()


Plan = Act | Seq


def execution_order(plan: Plan) -> list[Act]:
    """The actions in the order they are meant to happen (``after`` swaps its halves;
    ``and`` keeps the written order, though either order satisfies it)."""
    if isinstance(plan, Act):
        return [plan]
    first, second = (plan.b, plan.a) if plan.kind == "after" else (plan.a, plan.b)
    return execution_order(first) + execution_order(second)


def intent(plan: Plan) -> tuple:
    """What a plan asks for, written either way: "A after you B" = "B, then A"; "A and B" in
    any order (determiners aside, as in ``key``); an action the next one does on its way
    left out ("go to the ball and pick it up" = "pick up the ball"). Equal intents = the same
    command."""
    def steps(p: Plan) -> tuple:  # a sequence of steps, each an action or a set of them
        if isinstance(p, Act):
            return (p.key(),)
        if p.kind == "and":  # executed as written: a, then b
            if isinstance(p.a, Act) and isinstance(p.b, Act) and _entails(p.b.key(),
                                                                          p.a.key()):
                return (p.b.key(),)
            return (frozenset(_conj(p)),)
        first, second = (p.b, p.a) if p.kind == "after" else (p.a, p.b)
        return steps(first) + steps(second)

    def _conj(p: Plan) -> list:
        if isinstance(p, Seq) and p.kind == "and":
            return _conj(p.a) + _conj(p.b)
        s = steps(p)
        return [s[0] if len(s) == 1 else s]

    return _drop_entailed(steps(plan))


# an action that the next one on the same object does on its way: "go to the ball, then pick
# it up" asks for what "pick up the ball" asks; "pick up the key and put it next to the box"
# for what "put the key next to the box" does (a put starts with a pick-up)
_ENTAILED_BY = {"goto": {"goto", "pickup", "putnext", "open"}, "pickup": {"pickup", "putnext"},
                "open": {"open"}}


def _is_act(step) -> bool:
    return isinstance(step, tuple) and len(step) == 3 and isinstance(step[0], str)


def _entails(later, earlier) -> bool:
    return (_is_act(later) and _is_act(earlier) and later[1] == earlier[1]
            and later[0] in _ENTAILED_BY.get(earlier[0], ()) and
            (later[0] != earlier[0] or later == earlier))


def _drop_entailed(seq: tuple) -> tuple:
    out: list = []
    for step in seq:
        if out and _entails(step, out[-1]):
            out.pop()
        out.append(step)
    return tuple(out)


def depth(plan: Plan) -> int:
    return 0 if isinstance(plan, Act) else 1 + max(depth(plan.a), depth(plan.b))


def map_objects(plan: Plan, fn) -> Plan:
    """The plan with every object description replaced by ``fn(obj)``."""
    if isinstance(plan, Act):
        return replace(plan, obj=fn(plan.obj), fixed=fn(plan.fixed) if plan.fixed else None)
    return replace(plan, a=map_objects(plan.a, fn), b=map_objects(plan.b, fn))


def _and_of_acts(plan: Plan) -> bool:
    return isinstance(plan, Act) or (plan.kind == "and" and isinstance(plan.a, Act)
                                     and isinstance(plan.b, Act))


def representable(plan: Plan) -> bool:
    """Whether minigrid's verifier can hold the plan as one tree: an action, "A and B" of two
    actions, or a sequence of two such (BabyAI's own grammar)."""
    if isinstance(plan, Act):
        return True
    if plan.kind == "and":
        return isinstance(plan.a, Act) and isinstance(plan.b, Act)
    return _and_of_acts(plan.a) and _and_of_acts(plan.b)


def stages(plan: Plan) -> list[Plan]:
    """The plan as consecutive BabyAI trees, executed one after the other: longer commands
    ("A, then B, then C"; "A and B and C", done in written order, which satisfies every
    conjunct) than one tree of BabyAI's grammar can say."""
    if representable(plan):
        return [plan]
    first, second = (plan.b, plan.a) if plan.kind == "after" else (plan.a, plan.b)
    return stages(first) + stages(second)


# --- minigrid's verifier classes ------------------------------------------------------------


def to_instr(plan: Plan):
    """The plan as minigrid's instruction tree (not yet reset against an environment)."""
    from minigrid.envs.babyai.core import verifier as v

    if not representable(plan):
        raise ValueError(f"not one BabyAI instruction tree (split it with stages()): {plan}")
    if isinstance(plan, Seq):
        cls = {"and": v.AndInstr, "before": v.BeforeInstr, "after": v.AfterInstr}[plan.kind]
        return cls(to_instr(plan.a), to_instr(plan.b))

    def desc(o: Obj):
        return v.ObjDesc(o.type, o.color, o.loc)

    if plan.verb == "goto":
        return v.GoToInstr(desc(plan.obj))
    if plan.verb == "pickup":
        return v.PickupInstr(desc(plan.obj))
    if plan.verb == "open":
        return v.OpenInstr(desc(plan.obj))
    return v.PutNextInstr(desc(plan.obj), desc(plan.fixed))


def from_instr(instr) -> Plan:
    """A minigrid instruction tree (reset against its environment, as after ``env.reset``)
    as a plan; "the" where the description matched exactly one object."""
    from minigrid.envs.babyai.core import verifier as v

    def obj(d) -> Obj:
        return Obj(d.type, d.color, d.loc, "the" if len(d.obj_set) == 1 else "a")

    if isinstance(instr, v.AndInstr):
        return Seq("and", from_instr(instr.instr_a), from_instr(instr.instr_b))
    if isinstance(instr, v.BeforeInstr):
        return Seq("before", from_instr(instr.instr_a), from_instr(instr.instr_b))
    if isinstance(instr, v.AfterInstr):
        return Seq("after", from_instr(instr.instr_a), from_instr(instr.instr_b))
    if isinstance(instr, v.GoToInstr):
        return Act("goto", obj(instr.desc))
    if isinstance(instr, v.PickupInstr):
        return Act("pickup", obj(instr.desc))
    if isinstance(instr, v.OpenInstr):
        return Act("open", obj(instr.desc))
    if isinstance(instr, v.PutNextInstr):
        return Act("putnext", obj(instr.desc_move), obj(instr.desc_fixed))
    raise TypeError(f"not a BabyAI instruction: {instr!r}")
