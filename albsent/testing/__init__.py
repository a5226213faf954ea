"""Helpers for tests and benchmarks: seeded synthetic corpora, broken files, tiny SSL models."""
