"""Pictures of the world: a PNG of one frame, a GIF of an execution (imageio, atomic)."""

from __future__ import annotations

from pathlib import Path

from landfall.runs import atomic_path


def write_png(frame, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp, format="PNG")
    return path


def write_gif(frames: list, path: str | Path, fps: int = 6) -> Path:
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, frames, format="GIF", duration=1 / fps, loop=0)
    return path
