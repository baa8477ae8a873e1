"""One world and a stream of commands: parse -> ground -> shield -> execute -> judge."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from landfall.embody.execute import Execution, run_plan
from landfall.embody.sensors import describe
from landfall.embody.shield import Shield, Verdict
from landfall.embody.world import make_env, reset


@dataclass
class Outcome:
    command: str
    sensors: str
    plan: str  # the parsed plan in BabyAI's wording ("" if none)
    tags: list[tuple[str, str]]
    verdict: Verdict
    execution: Execution | None = None
    parse_s: float = 0.0
    first_action_s: float | None = None  # command received -> first action taken
    frames: list = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return not self.verdict.ok

    @property
    def world_success(self) -> bool:
        return bool(self.execution and self.execution.world_success)

    def to_dict(self) -> dict:
        e = self.execution
        return {"command": self.command, "sensors": self.sensors, "plan": self.plan,
                "refused": self.refused, "refusal": self.verdict.reasons,
                "refusal_kind": self.verdict.kind, "shield_notes": self.verdict.notes,
                "status": e.status if e else "refused", "steps": e.steps if e else 0,
                "world_success": self.world_success, "world_done": bool(e and e.world_done),
                "parse_s": round(self.parse_s, 5),
                "first_action_s": None if self.first_action_s is None
                else round(self.first_action_s, 5)}


class Session:
    """A BabyAI world commanded through ``parser`` behind ``shield``."""

    def __init__(self, parser, level: str, seed: int, shield: Shield | None = None, *,
                 frames: bool = False, tile_size: int = 16):
        self.parser = parser
        self.level, self.seed = level, seed
        self.shield = shield or Shield()
        self.frames, self.tile_size = frames, tile_size
        self.env = make_env(level)
        reset(self.env, seed)

    @property
    def mission(self) -> str:
        return self.env.unwrapped.mission

    def sensors(self) -> str:
        return describe(self.env)

    def frame(self):
        return self.env.unwrapped.get_frame(tile_size=self.tile_size)

    def command(self, text: str, *, stop_on_world_done: bool = True,
                max_steps: int = 0) -> Outcome:
        t0 = time.perf_counter()
        sensors = self.sensors()
        result = self.parser.parse(text, sensors)
        t_parse = time.perf_counter() - t0
        verdict = self.shield.check(result.plan, self.env, result.error)
        out = Outcome(text, sensors, result.plan.surface() if result.plan else "",
                      list(zip(result.words, result.tags, strict=False)), verdict,
                      parse_s=t_parse)
        if not verdict.ok:
            return out
        run = run_plan(self.env, verdict.grounded.instrs, frames=self.frames,
                       max_steps=max_steps or self.shield.max_steps,
                       stop_on_world_done=stop_on_world_done, tile_size=self.tile_size)
        out.execution = run
        out.frames = run.frames
        if run.first_action_at is not None:
            out.first_action_s = run.first_action_at - t0
        return out
