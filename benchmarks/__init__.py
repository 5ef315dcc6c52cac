"""Benchmarks of keras_robust: `python -m benchmarks` (see run.py)."""
