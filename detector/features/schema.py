"""The feature vector every window is turned into: names, order, and how the forest sees them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from operator import itemgetter

FEATURE_SCHEMA_VERSION = 1

# (name, transform): "log" = log1p of a count-like value, "raw" = as is.
FEATURES: tuple[tuple[str, str], ...] = (
    ("events", "log"),
    ("data_events", "log"),
    ("admin_events", "log"),
    ("destructive_events", "log"),
    ("read_events", "log"),
    ("rate_ratio", "log"),
    ("rate_z", "raw"),
    ("distinct_ips", "log"),
    ("distinct_countries", "raw"),
    ("distinct_principals", "log"),
    ("new_country_events", "log"),
    ("new_principal_events", "log"),
    ("new_prefix_events", "log"),
    ("new_user_agent_events", "log"),
    ("new_operation_events", "log"),
    ("max_travel_kmh", "log"),
    ("denied_share", "raw"),
    ("error_share", "raw"),
    ("unusual_admin_events", "log"),
    ("unusual_destructive_events", "log"),
    ("hour_share", "raw"),
    ("principal_keys_excess", "log"),
    ("principal_denied_excess", "log"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)
_VALUES = itemgetter(*FEATURE_NAMES)  # KeyError naming the first missing feature
_LOG_AT = tuple(i for i, (_, t) in enumerate(FEATURES) if t == "log")
_RAW_AT = tuple(i for i, (_, t) in enumerate(FEATURES) if t != "log")


def to_vector(values: Mapping[str, float]) -> list[float]:
    """Feature values in schema order, count-like ones as ``log1p``; missing names are an error.

    >>> v = to_vector({n: 0.0 for n in FEATURE_NAMES}); len(v) == len(FEATURE_NAMES), v[0]
    (True, 0.0)
    """
    row: list[float] = list(_VALUES(values))
    log1p = math.log1p
    for i in _LOG_AT:
        v = row[i]
        row[i] = log1p(0.0 if v < 0.0 else v)  # max(v, 0.0), NaN kept, without the call
    for i in _RAW_AT:
        row[i] = float(row[i])
    return row


def check_schema(names: Sequence[str], version: int) -> str | None:
    """Why a stored feature list does not match this code's, or None when it does."""
    if version != FEATURE_SCHEMA_VERSION:
        return f"feature schema version {version} != {FEATURE_SCHEMA_VERSION} expected by this KeyWatch"
    if tuple(names) != FEATURE_NAMES:
        return "feature names or order differ from this KeyWatch's feature schema"
    return None
