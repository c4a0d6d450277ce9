"""Alembic environment of the alert store.

:meth:`detector.adapters.store.Store.migrate` hands in its connection (already in a transaction
holding the migration lock) as ``config.attributes["connection"]``. The ``alembic`` command line
works too, with ``sqlalchemy.url`` set in its configuration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from detector.adapters.store.tables import metadata

VERSION_TABLE = "keywatch_alembic_version"


def run_offline(url: str | None) -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=url, target_metadata=metadata, version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    """Run the migrations on ``connection``; the caller's transaction, if any, commits them."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Entry point Alembic runs."""
    config = context.config
    given = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        run_offline(url)
    elif given is not None:
        run_online(given)
    else:
        with sa.create_engine(url or "").begin() as connection:
            run_online(connection)


if hasattr(context, "config"):  # only inside Alembic: importing this file (doctests) runs nothing
    main()
