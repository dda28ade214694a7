"""Declarative base, naming convention and the column helpers every table uses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, MetaData, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so the migration and later ALTERs can name what they touch.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (read by SQLAlchemy at class creation)
        uuid.UUID: Uuid(as_uuid=True),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        str: Text,
    }
    # Server-generated values (created_at, updated_at) come back with RETURNING: reading them
    # after a flush never triggers a lazy load, which async sessions cannot do.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


class UUIDPrimaryKey:
    """``id`` UUID; generated in Python (known before flush) and by the server for raw inserts."""

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        default=uuid.uuid4,
        server_default=text("gen_random_uuid()"),
        sort_order=-100,
    )


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=100)


class Timestamps(CreatedAt):
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), sort_order=101
    )


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('A', 'B')`` as SQL text (values are our own constants, never user input)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"


def one_of(column: str, values: Iterable[str], *, name: str | None = None) -> CheckConstraint:
    """CHECK that ``column`` holds one of ``values`` (NULL passes, as in any CHECK).

    The constraint is named ``ck_<table>_<name or column>`` by the naming convention.
    """
    return CheckConstraint(sql_in(column, values), name=name or column)


def json_object() -> Any:
    """Server default ``'{}'::jsonb``."""
    return text("'{}'::jsonb")


def json_array() -> Any:
    """Server default ``'[]'::jsonb``."""
    return text("'[]'::jsonb")
