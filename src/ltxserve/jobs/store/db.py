"""Open the store for a deployment: create the engine and bring the schema up to date."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from ltxserve.config import Settings
from ltxserve.jobs.store.sql import JobStore, make_engine


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("ltxserve.jobs.store") / "migrations")
    )
    return cfg


def migrate(store: JobStore) -> None:
    """Apply pending migrations; safe to run from several processes at once."""
    cfg = alembic_config()
    with store.engine.connect() as conn:
        if store.is_sqlite:
            conn.info["write"] = True  # serialise concurrent starters on the write lock
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            conn.info.pop("write", None)


def open_store(settings: Settings, *, run_migrations: bool = True) -> JobStore:
    settings.ensure_dirs()
    store = JobStore(
        make_engine(settings.db_url, settings.db_timeout_seconds), settings.db_timeout_seconds
    )
    if run_migrations:
        migrate(store)
    return store
