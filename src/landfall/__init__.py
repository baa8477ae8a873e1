"""Landfall: take a pretrained transformer through its life cycle."""

from __future__ import annotations

__version__ = "0.1.0"


_API = ("train", "pretrain", "generate", "export_merged", "export_onnx", "evaluate", "predict", "ensemble",
        "compress", "prune", "distill", "serve",
        "demo", "Config", "load_config")


def __getattr__(name: str):  # lazy: `import landfall` stays fast for the CLI's --help
    if name in _API:
        from landfall import api, config

        return getattr(api, name, None) or getattr(config, name)
    raise AttributeError(name)
