"""Alembic environment: run migrations on the connection handed over by ltxserve.jobs.store.db."""

from __future__ import annotations

from alembic import context

from ltxserve.jobs.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # plain `alembic` CLI use: connect from sqlalchemy.url
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
