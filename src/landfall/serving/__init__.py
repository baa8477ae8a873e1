"""Serving: a run directory behind HTTP with dynamic batching, limits and metrics."""
