"""Benchmarks, run by hand (python benchmarks/bench_*.py): ratios measured side by side."""
