"""Shared test set-up; its presence puts ``tests/`` on ``sys.path`` so tests can import ``helpers``,
``fakes`` and the other support modules.

Database fixtures: ``db_url`` runs a test on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL must answer at ``KEYWATCH_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own database ``kw_<uuid hex>``,
dropped afterwards, so parallel workers never collide. A missing server fails the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from detector.adapters.store import Store

pytest_plugins = ["api_support"]  # the API's ``env`` fixture

ADMIN_URL = os.environ.get("KEYWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create ``kw_<uuid hex>``, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"kw_{uuid.uuid4().hex}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module's expensive set-up (run once, not per backend)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An empty, migrated store on each backend in turn."""
    with Store(db_url) as migrated:
        migrated.migrate()
        yield migrated
