"""Open the store for a deployment: create the engine and bring the schema up to date.

Who migrates is a setting (``LTXSERVE_MIGRATE``): ``auto`` (one machine, the embedded
default) lets every process upgrade the schema as it starts; ``never`` (several API
processes and workers) leaves it to one ``ltxserve migrate`` per deploy, and a process
that finds the database behind its code refuses to start (``ConfigError``) rather than
run on a schema it does not know. Either way an upgrade holds a PostgreSQL advisory
lock (SQLite: the write lock), so two upgrades that do meet run one after the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from ltxserve.config import ConfigError, Settings
from ltxserve.jobs.store.connection import make_engine
from ltxserve.jobs.store.sql import JobStore

log = logging.getLogger("ltxserve.store")

MIGRATE_LOCK = 0x6C7478_6D6967  # pg_advisory_xact_lock key: "ltx" "mig"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("ltxserve.jobs.store") / "migrations")
    )
    return cfg


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against this code's migrations."""

    current: tuple[str, ...]  # revisions recorded in the database; () for an empty one
    head: str  # the newest revision this code knows
    known: frozenset[str]  # every revision this code knows

    @property
    def at_head(self) -> bool:
        return self.current == (self.head,)

    @property
    def ahead(self) -> bool:
        """A newer release migrated the database (a rolling update or a rollback)."""
        return any(rev not in self.known for rev in self.current)

    @property
    def behind(self) -> bool:
        return not self.at_head and not self.ahead

    def describe(self) -> str:
        return ", ".join(self.current) if self.current else "none (an empty database)"

    def where(self) -> str:
        if not self.current:
            return "the database has no schema yet"
        return f"the database schema is at revision {self.describe()}"


def schema_state(store: JobStore) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config())
    with store.engine.connect() as conn:
        current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    (head,) = script.get_heads()  # one linear history
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return SchemaState(current, head, known)


def migrate(store: JobStore) -> tuple[str, ...]:
    """Apply pending migrations; safe to run from several processes at once.

    Returns the revisions the database was at when this upgrade got the lock: the
    head itself when another process had just done the work.
    """
    cfg = alembic_config()
    with store.engine.connect() as conn:
        if store.is_sqlite:
            conn.info["write"] = True  # serialise concurrent starters on the write lock
        else:
            # Upgrades queue on one transaction-scoped advisory lock for as long as the
            # one ahead takes (lock_timeout 0: no limit for this wait alone); the DDL
            # after it keeps the engine's lock_timeout, so a migration stuck behind live
            # traffic fails rather than stalling every query queued behind it.
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
            conn.execute(text(f"SET LOCAL lock_timeout = {int(store.timeout * 1000)}"))
        try:
            before = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            conn.info.pop("write", None)
    return before


def require_head(store: JobStore) -> SchemaState:
    """For ``LTXSERVE_MIGRATE=never``: refuse a database behind this code's migrations."""
    state = schema_state(store)
    if state.behind:
        raise ConfigError(
            f"{state.where()} but this release needs revision {state.head}, and "
            "LTXSERVE_MIGRATE=never leaves migrations to a separate step: run "
            "`ltxserve migrate` once (same LTXSERVE_DATABASE_URL), then start this "
            "process again",
            setting="LTXSERVE_MIGRATE",
            doc="docs/deployment.md#migrations",
        )
    return state


def open_store(settings: Settings, *, run_migrations: bool = True) -> JobStore:
    """The store of ``settings``; with ``run_migrations``, its schema checked against the
    code: upgraded (``LTXSERVE_MIGRATE=auto``) or required (``never``, ConfigError)."""
    settings.ensure_dirs()
    store = JobStore(
        make_engine(settings.db_url, settings.db_timeout_seconds), settings.db_timeout_seconds
    )
    if not run_migrations:
        return store
    try:
        state = require_head(store) if settings.migrate == "never" else schema_state(store)
        if state.behind:
            migrate(store)
    except BaseException:
        store.engine.dispose()
        raise
    if state.ahead:
        log.warning(
            "database schema %s is newer than this release's %s (a newer release "
            "migrated it); running on it",
            state.describe(),
            state.head,
        )
    return store
