"""The alert store (SQLAlchemy): alerts, incidents, dead letters and consumer checkpoints.

Works on ``sqlite:///PATH`` and ``postgresql+psycopg://USER@HOST:PORT/DB``; the schema is kept
by the Alembic migrations shipped in ``migrations/`` (run by :meth:`Store.migrate`).
"""

from __future__ import annotations

from detector.adapters.store.engine import StoreError
from detector.adapters.store.rows import Checkpoint, DeadLetter
from detector.adapters.store.store import Store

__all__ = ["Checkpoint", "DeadLetter", "Store", "StoreError"]
