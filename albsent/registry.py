"""Registries are plain dicts filled by decorators; `lookup` is their one error message."""

from __future__ import annotations

from typing import TypeVar

from albsent.errors import ConfigError

T = TypeVar("T")


def lookup(table: dict[str, T], kind: str, name: str) -> T:
    """table[name], or a ConfigError listing the known names: "unknown model 'x'; known: a, b"."""
    if name not in table:
        raise ConfigError(f"unknown {kind} '{name}'; known: {', '.join(sorted(table))}")
    return table[name]
