"""What the CLI prints: Rich tables for people, raw JSON for scripts (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Raw JSON on stdout, nothing else (no colours, no wrapping)."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _field(row: dict[str, Any], column: str) -> Any:
    """``expert.name`` reads a nested field."""
    value: Any = row
    for name in column.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str) -> None:
    """One row per item with the named fields (camelCase, as the API names them)."""
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(_field(row, column)) for column in columns))
    out.print(grid)


def record(data: dict[str, Any], *, title: str) -> None:
    """One object as field / value lines."""
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column("field", style="bold")
    grid.add_column("value", overflow="fold")
    for key, value in data.items():
        grid.add_row(key, _cell(value))
    out.print(grid)


def page(data: dict[str, Any], columns: Sequence[str], *, title: str, as_json: bool) -> None:
    if as_json:
        emit_json(data)
        return
    table(data["items"], columns, title=title)
    if data.get("nextCursor"):
        err.print("more results: pass --all to follow every page, or --cursor to go on")
