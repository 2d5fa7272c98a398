"""Benchmarks: scripts that measure, never assert (see docs/benchmarks.md)."""
