"""Checked-in snapshots of every message type's payload schema, and the compatibility rule.

A payload may only change backwards-compatibly under its type: identical, or new optional
fields. Anything else (a field removed, a new required field, a field whose type changed)
needs a new version of the type (``.v2``): consumers and messages already in flight still
speak the old one.

    python -m tests.message_schemas    # (or `make message-schemas`) rewrite every snapshot

Regenerate only on purpose: for a new message type, or after an allowed change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sourcing.common.messages  # noqa: F401  (registers every message type)
from sourcing.common.events import MESSAGE_TYPES

SNAPSHOTS = Path(__file__).resolve().parent / "fixtures" / "message_schemas"
REGENERATE = "make message-schemas"
# Keywords that document a schema without changing which payloads it accepts.
ANNOTATIONS = frozenset({"title", "description", "examples", "default"})


def payload_schema(message_type: str) -> dict[str, Any]:
    """The JSON Schema a consumer validates the payload of ``message_type`` against."""
    return MESSAGE_TYPES[message_type].model_json_schema(by_alias=True, mode="validation")


def snapshot_path(message_type: str) -> Path:
    return SNAPSHOTS / f"{message_type}.json"


def read_snapshot(message_type: str) -> dict[str, Any] | None:
    path = snapshot_path(message_type)
    if not path.exists():
        return None
    snapshot: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return snapshot


def write_snapshots() -> list[Path]:
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    written = []
    for message_type in sorted(MESSAGE_TYPES):
        path = snapshot_path(message_type)
        text = json.dumps(payload_schema(message_type), indent=2, sort_keys=True) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _accepting(schema: Any) -> Any:
    """``schema`` without its annotations: only what decides which payloads are valid."""
    if isinstance(schema, dict):
        return {k: _accepting(v) for k, v in schema.items() if k not in ANNOTATIONS}
    if isinstance(schema, list):
        return [_accepting(item) for item in schema]
    return schema


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` cannot replace ``old`` under the same type; empty when it can."""
    old, new = _accepting(old), _accepting(new)
    old_fields: dict[str, Any] = old.get("properties", {})
    new_fields: dict[str, Any] = new.get("properties", {})
    old_required = set(old.get("required", []))
    problems = [f"field {name!r} removed" for name in old_fields if name not in new_fields]
    problems += [
        f"field {name!r} is now required"
        for name in new.get("required", [])
        if name not in old_required
    ]
    problems += [
        f"field {name!r} changed: {json.dumps(old_fields[name])} -> {json.dumps(new_fields[name])}"
        for name in old_fields
        if name in new_fields and old_fields[name] != new_fields[name]
    ]
    old_defs: dict[str, Any] = old.get("$defs", {})
    new_defs: dict[str, Any] = new.get("$defs", {})
    problems += [
        f"definition {name!r} changed"
        for name, definition in old_defs.items()
        if new_defs.get(name) != definition
    ]
    rest = {k: v for k, v in old.items() if k not in ("properties", "required", "$defs")}
    problems += [
        f"{keyword!r} changed" for keyword, value in rest.items() if new.get(keyword) != value
    ]
    return problems


def main() -> int:
    for path in write_snapshots():
        print(path.relative_to(SNAPSHOTS.parents[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
