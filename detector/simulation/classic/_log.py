"""The generated log as columns of small integers, with its strings interned, filled in generation order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._draws import FloatArray

if TYPE_CHECKING:
    from ._world import Key

OUTCOMES = ("success", "denied", "error")
DENIED = 1
UNLABELLED = -1  # the tag of background traffic


@dataclass(slots=True, frozen=True)
class Address:
    """A source address and its geography (none for AWS service principals)."""

    ip: str
    country: str
    lat: float | None
    lon: float | None


class EventLog:
    """Columnar event store: time, key, operation, principal, address, agent, outcome, scenario tag."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.addrs: list[Address] = []
        self.prefixes: set[str] = set()
        self.tables: dict[str, dict[str, int]] = {"principal": {}, "ua": {}, "op": {}}
        self.chunks: list[list[NDArray[Any]]] = []

    def intern(self, table: str, value: str) -> int:
        """Index of ``value`` in ``table`` (``principal``, ``ua`` or ``op``), added if new."""
        return self.tables[table].setdefault(value, len(self.tables[table]))

    def names(self, table: str) -> list[str]:
        """The values of ``table`` by index."""
        return list(self.tables[table])

    def add_addr(self, addr: Address) -> int:
        """Index of a newly added address."""
        self.addrs.append(addr)
        return len(self.addrs) - 1

    def add(
        self,
        ts: FloatArray,
        key: Any,
        op: Any,
        principal: Any,
        addr: Any,
        ua: Any,
        *,
        outcome: Any = 0,
        tag: int = UNLABELLED,
    ) -> None:
        """Append one chunk; every column is an array shaped like ``ts`` or a scalar broadcast to it."""
        shape = ts.shape
        columns = [key, op, principal, addr, ua, outcome, tag]
        arrays = [np.broadcast_to(np.asarray(c, dtype=np.int64), shape) for c in columns]
        self.chunks.append([np.round(ts * 1000.0) / 1000.0, *arrays])
