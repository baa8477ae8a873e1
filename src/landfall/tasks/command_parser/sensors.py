"""What the agent senses, as a short text: the objects in its 7x7 view and what it carries.

The parser reads it as a second segment beside the command; ``landfall.embody.sensors``
is its public home on the world side (it lives here because the task's training data,
one layer down, is made with it).
"""

from __future__ import annotations


def visible_objects(env) -> list[tuple[str, str, int, int]]:
    """(colour, type, steps ahead, steps right) of every object the agent sees, nearest first
    (walls and the floor left out)."""
    u = env.unwrapped
    grid, vis = u.gen_obs_grid()
    seen = []
    for i in range(grid.width):
        for j in range(grid.height):
            cell = grid.get(i, j)
            if cell is None or not vis[i, j] or cell.type in ("wall", "floor", "goal", "lava"):
                continue
            ahead, right = grid.height - 1 - j, i - grid.width // 2
            if ahead == 0 and right == 0:
                continue  # the agent's own cell (what it carries is drawn there)
            seen.append((cell.color, cell.type, ahead, right))
    seen.sort(key=lambda s: (abs(s[2]) + abs(s[3]), s[2], s[3]))
    return seen


def _where(ahead: int, right: int) -> str:
    parts = []
    if ahead:
        parts.append(f"{ahead} ahead")
    if right:
        parts.append(f"{abs(right)} {'right' if right > 0 else 'left'}")
    return " ".join(parts) or "here"


def describe(env, limit: int = 6) -> str:
    """E.g. "you see red ball 1 ahead, grey door 3 ahead 2 left; you carry nothing"."""
    u = env.unwrapped
    seen = visible_objects(env)[:limit]
    sees = ", ".join(f"{c} {t} {_where(a, r)}" for c, t, a, r in seen) or "nothing"
    door = ""
    fwd = u.grid.get(*u.front_pos)
    if fwd is not None and fwd.type == "door":
        state = "open" if fwd.is_open else "locked" if fwd.is_locked else "closed"
        door = f"; facing a {state} door"
    carry = f"{u.carrying.color} {u.carrying.type}" if u.carrying else "nothing"
    return f"you see {sees}{door}; you carry {carry}"
