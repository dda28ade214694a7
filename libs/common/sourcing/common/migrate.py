"""Database migrations (Alembic), configured in code so they run from an installed package.

    python -m sourcing.common.migrate upgrade [revision]      # default: head
    python -m sourcing.common.migrate downgrade <revision>    # explicit (``base`` drops all)
    python -m sourcing.common.migrate current

``DATABASE_URL`` comes from the settings. Any number of processes may migrate at once: the
migration environment holds a PostgreSQL advisory lock for the whole run, so one migrates and
the others then find the database already at the target revision.

Every service compares the database's revision with the code's head before it serves
(:func:`check_schema`) and refuses to start when they differ.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# Alembic is imported by the commands that migrate, not by the services' start-up check
# (:func:`check_schema`): with every migration module it costs each process ~10 MiB.
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The pg_advisory_xact_lock key held while migrating: arbitrary, fixed, used for nothing else.
MIGRATION_LOCK_KEY = 7_305_281_149_224_330_001


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` (any ``postgresql://`` form)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: configparser would choke on '%' in passwords.
    config.attributes["database_url"] = database_url
    return config


# Alembic keeps its migration context in module globals: one command at a time per process
# (processes are serialised by the advisory lock instead).
_alembic_lock = threading.Lock()


def _run(action: Callable[[], None]) -> None:
    """Run an Alembic command; from a thread when this thread already runs an event loop
    (the migration environment starts its own loop for the asyncpg engine)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with _alembic_lock:
            action()
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            with _alembic_lock:
                action()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="alembic-migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


class SchemaMismatch(RuntimeError):
    """The database is not at the revision this code expects (start-up stops)."""


def _revision_graph() -> dict[str, tuple[str, ...]]:
    """Every shipped revision and the revisions it follows, read from the migration files'
    module-level ``revision`` and ``down_revision`` assignments without importing them."""
    graph: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target: ast.expr | None = None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and target.id in ("revision", "down_revision")
                and value is not None
            ):
                values[target.id] = ast.literal_eval(value)
        revision, down = values.get("revision"), values.get("down_revision")
        if isinstance(revision, str):
            parents = down if isinstance(down, list | tuple) else (down,) if down else ()
            graph[revision] = tuple(str(parent) for parent in parents)
    return graph


def head_revision() -> str:
    """The newest migration this code ships (the one revision no other one follows)."""
    graph = _revision_graph()
    followed = {parent for parents in graph.values() for parent in parents}
    heads = sorted(set(graph) - followed)
    if len(heads) != 1:
        raise SchemaMismatch(f"expected one head migration in {MIGRATIONS_DIR}, found {heads}")
    return heads[0]


async def database_revision(database_url: str, *, timeout: float) -> str | None:  # noqa: ASYNC109
    """The revision stamped in the database's ``alembic_version`` (None: never migrated)."""
    from sourcing.common.config import to_asyncpg_url

    engine = create_async_engine(
        to_asyncpg_url(database_url),
        poolclass=NullPool,
        connect_args={"timeout": timeout, "command_timeout": timeout},
    )
    try:
        async with engine.connect() as connection:
            if await connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
                return None
            versions = await connection.scalars(text("SELECT version_num FROM alembic_version"))
            return ",".join(sorted(versions)) or None
    finally:
        await engine.dispose()


async def check_schema(database_url: str, *, timeout: float) -> None:  # noqa: ASYNC109
    """Raise :class:`SchemaMismatch` unless the database is at this code's head revision."""
    head = head_revision()
    try:
        found = await database_revision(database_url, timeout=timeout)
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise SchemaMismatch(
            f"cannot read the database's schema revision (code expects {head}): {exc}"
        ) from exc
    if found == head:
        return
    if found is None or found in _revision_graph():
        raise SchemaMismatch(
            f"database schema revision is {found or 'none (never migrated)'}, this code expects "
            f"{head}: run the migrations (`python -m sourcing.common.migrate upgrade head`, "
            "`make migrate`), then start again"
        )
    raise SchemaMismatch(
        f"database schema revision {found} is unknown to this code (it expects {head}): the "
        "database was migrated by a newer release; run that release, or downgrade the "
        f"database with it (`python -m sourcing.common.migrate downgrade {head}`)"
    )


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    from alembic import command

    _run(lambda: command.upgrade(alembic_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` drops every table)."""
    from alembic import command

    _run(lambda: command.downgrade(alembic_config(database_url), revision))


def current(database_url: str) -> None:
    """Print the database's current revision."""
    from alembic import command

    _run(lambda: command.current(alembic_config(database_url), verbose=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sourcing.common.migrate", description="Run database migrations."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="migrate up (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to REVISION (base drops everything)")
    down.add_argument("revision", help="target revision, required (base drops every table)")
    sub.add_parser("current", help="show the current revision")
    args = parser.parse_args(argv)
    # Alembic reports each step ("Running upgrade  -> 0001") through logging.
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from sourcing.common.config import ConfigurationError, Settings, load_settings

    try:
        database_url = load_settings(Settings).DATABASE_URL
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.action == "upgrade":
        upgrade(database_url, args.revision)
    elif args.action == "downgrade":
        downgrade(database_url, args.revision)
    else:
        current(database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
