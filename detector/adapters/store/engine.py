"""Engines for the alert store: URL checks, SQLite transaction control, one-line errors, locks."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from detector.domain.errors import KeyWatchError

WRITE_OPTION = "keywatch_write"
BACKENDS = ("sqlite", "postgresql")
EXAMPLES = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
UNDEFINED_TABLE = "42P01"


class StoreError(KeyWatchError):
    """The alert store cannot be reached or used; the message says why in one line."""


def parse_url(text: str) -> URL:
    """Check a store URL; a plain ``postgresql://`` URL gets the psycopg (3) driver."""
    try:
        url = make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise StoreError(f"invalid store URL {text!r}: expected {EXAMPLES}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in BACKENDS:
        raise StoreError(f"unsupported store URL {safe(url)}: expected {EXAMPLES}")
    if backend == "postgresql" and url.get_driver_name() != "psycopg":
        raise StoreError(f"unsupported PostgreSQL driver in {safe(url)}: use postgresql+psycopg://")
    return url


def safe(url: URL) -> str:
    """The URL without its password, for messages and logs."""
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL) -> Engine:
    """An engine for ``url``: SQLite with WAL and explicit transactions, PostgreSQL with pre-ping."""
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(database))
        except OSError as exc:
            raise StoreError(f"cannot create the store {database}: {exc.strerror}") from None
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600, whatever the umask) unless it exists.

    The store holds alerts, incidents, user token hashes and the audit ledger; SQLite creates its
    WAL and shared-memory files with the database file's permissions.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)
    os.close(fd)


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    """Let SQLAlchemy emit BEGIN itself (pysqlite's own handling breaks transactional DDL)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    _use_wal(cursor)  # readers do not block the writer, nor it them
    cursor.close()


def _use_wal(cursor: sqlite3.Cursor, wait_seconds: float = 10.0) -> None:
    """Put the file in WAL mode (it stays so), waiting for a writer that holds it.

    The switch needs the file to itself, and SQLite refuses it at once, without its busy wait,
    while another connection writes: two processes starting on a fresh file (two members
    migrating it) would otherwise fail with "database is locked".
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front, so two of them queue instead of deadlocking."""
    immediate = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def translated(url: URL) -> Iterator[None]:
    """Turn database failures (unreachable, missing schema, locked) into a one-line StoreError."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise StoreError(f"alert store {safe(url)}: {_first_line(exc)}{_hint(exc)}") from None
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNDEFINED_TABLE:
            raise
        raise StoreError(f"alert store {safe(url)}: {_first_line(exc)}{_hint(exc)}") from None


def _first_line(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig or exc).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


def _hint(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig)
    missing = "no such table" in text or getattr(exc.orig, "sqlstate", None) == UNDEFINED_TABLE
    return " (the store is not migrated yet: run Store.migrate())" if missing else ""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def advisory_lock(conn: Connection, name: str) -> None:
    """Hold the named lock until the transaction ends (PostgreSQL; SQLite writers are serial anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(name))))
