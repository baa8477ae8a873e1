"""Execution: BabyAI's own bot (``minigrid.utils.baby_ai_bot``), an oracle planner, driven by
*our* instruction tree (the language understanding is the parser's), step by step, with the
world's own verifier of its own mission running beside ours."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def make_bot(env, instr):
    """A BabyAIBot that plans for ``instr`` (the bot reads the mission's tree only when it is
    built, so the world keeps its own mission for its own success check)."""
    from minigrid.utils.baby_ai_bot import BabyAIBot

    u = env.unwrapped
    saved = u.instrs
    u.instrs = instr
    try:
        return BabyAIBot(env)
    finally:
        u.instrs = saved


def update_positions(instr) -> None:
    """After a drop: where the tracked objects are now (minigrid does this for its own tree)."""
    if hasattr(instr, "instr_a"):
        update_positions(instr.instr_a)
        update_positions(instr.instr_b)
    else:
        instr.update_objs_poss()


@dataclass
class Execution:
    status: str  # success (our plan verified), failure, stopped (by the monitor), timeout,
    # stuck (the planner gave up), world-ended (the world's own episode ended first)
    steps: int = 0
    actions: list[str] = field(default_factory=list)
    world_success: bool = False  # the world's own check on its own mission
    world_done: bool = False
    reason: str = ""
    frames: list = field(default_factory=list)
    first_action_at: float | None = None  # time.perf_counter() of the first step


def run_plan(env, instrs, *, max_steps: int = 0, stop_on_world_done: bool = True,
             monitor: Callable | None = None, frames: bool = False,
             tile_size: int = 16) -> Execution:
    """Drive the bot through ``instrs`` (one tree or a list of stages, already reset against
    ``env``) until every stage is verified, one fails, the world's episode ends (if
    ``stop_on_world_done``), or ``max_steps``. ``monitor(env, action)`` is asked after every
    step; a string it returns stops the run (the shield's dry run uses it)."""
    stages = instrs if isinstance(instrs, list) else [instrs]
    u = env.unwrapped
    limit = max_steps or max(1, u.max_steps - u.step_count)
    out = Execution("timeout")
    if frames:
        out.frames.append(u.get_frame(tile_size=tile_size))
    stage = 0
    bot = make_bot(env, stages[0])
    for _ in range(limit):
        instr = stages[stage]
        try:
            action = bot.replan()
        except Exception as e:  # noqa: BLE001 - the planner's own assertions
            out.status, out.reason = "stuck", f"the planner gave up: {type(e).__name__} {e}"
            return out
        if action == u.actions.done:
            out.status, out.reason = "stuck", "the planner has nothing left to do"
            return out
        if out.first_action_at is None:
            out.first_action_at = time.perf_counter()
        _, reward, terminated, truncated, _ = env.step(action)
        out.steps += 1
        out.actions.append(u.actions(action).name)
        if frames:
            out.frames.append(u.get_frame(tile_size=tile_size))
        if action == u.actions.drop:
            for s in stages:
                update_positions(s)
        status = instr.verify(action)
        if terminated:
            out.world_done = True
            out.world_success = reward > 0
        if monitor is not None:
            why = monitor(env, action)
            if why:
                out.status, out.reason = "stopped", why
                return out
        if status == "failure":
            out.status = "failure"
            return out
        if status == "success":
            stage += 1
            if stage == len(stages):
                out.status = "success"
                return out
            bot = make_bot(env, stages[stage])
        if truncated or (terminated and stop_on_world_done):
            out.status = "world-ended" if terminated else "timeout"
            return out
    return out
