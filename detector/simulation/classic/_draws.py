"""Random draws shared by the whole generator; every one comes from the caller's PCG64 generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def pick(rng: Generator, items: Sequence[Any]) -> Any:
    """One of ``items``, uniformly."""
    return items[int(rng.integers(len(items)))]


def weighted(rng: Generator, table: dict[str, float]) -> str:
    """One name of ``table``, with probability proportional to its weight."""
    names = list(table)
    weights = np.asarray(list(table.values()), dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def choices(
    rng: Generator, items: Sequence[int], weights: Sequence[float] | FloatArray, count: int
) -> IntArray:
    """``count`` draws from ``items`` with the given relative ``weights``."""
    p = np.asarray(weights, dtype=np.float64)
    return np.asarray(items, dtype=np.int64)[rng.choice(len(items), size=count, p=p / p.sum())]


def outcomes(rng: Generator, count: int, p_denied: float, p_error: float) -> IntArray:
    """Outcome codes (0 success, 1 denied, 2 error) with the given probabilities."""
    u = rng.random(count)
    return np.where(u < p_denied, 1, np.where(u < p_denied + p_error, 2, 0)).astype(np.int64)


def uuid4s(rng: Generator, count: int) -> list[str]:
    """``count`` random version-4 UUIDs."""
    raw = np.frombuffer(rng.bytes(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * count, 32)
    ]
