"""Benchmarks of hub_viz against the bare dashboard frameworks (``python -m benchmarks``)."""
