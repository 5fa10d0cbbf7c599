"""Benchmarks: speed and memory measured as scripts, reported in docs/performance.md."""
