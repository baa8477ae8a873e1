"""Command the agent step by step in the terminal: after each command the world is shown
(as text, and as a PNG if asked), with the plan, or why the shield refused it."""

from __future__ import annotations

import sys
from pathlib import Path

from landfall.embody.render import write_png
from landfall.embody.session import Outcome, Session


def world_text(session: Session) -> str:
    """minigrid's own text rendering of the grid (agent as an arrow)."""
    u = session.env.unwrapped
    return u.pprint_grid() if hasattr(u, "pprint_grid") else str(u)


def report(out: Outcome) -> str:
    lines = [f"sensors: {out.sensors}", f"plan:    {out.plan or '-'}"]
    if out.refused:
        lines.append("REFUSED: " + "; ".join(out.verdict.reasons))
    else:
        e = out.execution
        lines.append(f"result:  {e.status} in {e.steps} steps"
                     + (f" ({e.reason})" if e.reason else "")
                     + ("; the level's own mission is complete" if e.world_success else ""))
    lines += [f"note:    {n}" for n in out.verdict.notes]
    return "\n".join(lines)


def interactive(session: Session, *, png: Path | None = None, stdin=None, stdout=None) -> int:
    """Read commands until EOF or 'quit'; returns the number of commands executed."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    say = stdout.write
    say(f"{session.level} seed {session.seed}. The level's mission: {session.mission}\n")
    say(world_text(session) + "\n")
    say(f"sensors: {session.sensors()}\n")
    done = 0
    while True:
        say("command> ")
        stdout.flush()
        line = stdin.readline()
        if not line or line.strip().lower() in ("quit", "exit", "q"):
            break
        if not line.strip():
            continue
        out = session.command(line.strip(), stop_on_world_done=False)
        done += not out.refused
        say(report(out) + "\n" + world_text(session) + "\n")
        if png is not None:
            write_png(session.frame(), png)
            say(f"(world drawn in {png})\n")
    return done
