"""Tiny helpers to write SQL text for DuckDB safely (identifiers and string literals)."""

from __future__ import annotations


def ident(name: str) -> str:
    """Quote ``name`` as a DuckDB identifier (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote ``value`` as a DuckDB string literal (single quotes, embedded quotes doubled).

    DuckDB does not process backslash escapes in ordinary string literals, so regular
    expressions can be embedded as they are.
    """
    return "'" + value.replace("'", "''") + "'"


def str_list(values: tuple[str, ...] | list[str]) -> str:
    """A DuckDB list literal of strings, e.g. ``['%d.%m.%Y', '%d.%m.%Y %H:%M']``."""
    return "[" + ", ".join(lit(v) for v in values) + "]"
