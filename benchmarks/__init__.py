"""Benchmarks that print numbers (last line: one JSON object). Run via `mirrorset bench ...`."""
