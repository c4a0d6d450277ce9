"""Key catalog: what each key protects, so severity can weigh it."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from detector.domain.errors import ConfigError

CACHE_SIZE = 65536


@dataclass(slots=True, frozen=True)
class KeyInfo:
    """Who owns a key and what it protects."""

    environment: str
    classification: str
    owner: str = ""
    service: str = ""


@dataclass(slots=True, frozen=True)
class CatalogEntry:
    """A key id, alias or glob pattern and what it maps to."""

    match: str
    info: KeyInfo


class KeyCatalog:
    """Looks keys up by exact id, then alias, then the first matching pattern; else the defaults.

    >>> cat = KeyCatalog.from_mapping({"keys": [{"match": "arn:*:key/prod-*", "environment": "production",
    ...     "classification": "restricted"}], "defaults": {"environment": "unknown"}})
    >>> cat.lookup("arn:aws:kms:eu-west-1:1:key/prod-1").environment, cat.lookup("other").environment
    ('production', 'unknown')
    """

    def __init__(self, entries: list[CatalogEntry], default: KeyInfo) -> None:
        self.exact = {e.match: e.info for e in entries if not any(c in e.match for c in "*?[")}
        self.patterns = [e for e in entries if e.match not in self.exact]
        self.default = default
        self._cache: dict[tuple[str, str | None], KeyInfo] = {}

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, defaults: dict[str, str] | None = None) -> KeyCatalog:
        """Build from ``{keys: [{match, environment, classification, owner, service}], defaults}``."""
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError("key catalog must be a mapping with 'keys' and optional 'defaults'")
        base = {"environment": "unknown", "classification": "internal", "owner": "", "service": ""}
        base.update(defaults or {})
        base.update(data.get("defaults") or {})
        entries = []
        for i, raw in enumerate(data.get("keys") or []):
            if not isinstance(raw, dict) or not isinstance(raw.get("match"), str):
                raise ConfigError(f"key catalog entry {i} needs a 'match' string")
            fields = {
                k: str(raw.get(k, base[k])) for k in ("environment", "classification", "owner", "service")
            }
            entries.append(CatalogEntry(raw["match"], KeyInfo(**fields)))
        return cls(entries, KeyInfo(**{k: str(v) for k, v in base.items()}))

    def lookup(self, key_id: str, alias: str | None = None) -> KeyInfo:
        """What ``key_id`` (or its alias) protects."""
        cached = self._cache.get((key_id, alias))
        if cached is not None:
            return cached
        info = self.exact.get(key_id) or (self.exact.get(alias) if alias else None)
        if info is None:
            info = next(
                (
                    e.info
                    for e in self.patterns
                    if fnmatchcase(key_id, e.match) or (alias and fnmatchcase(alias, e.match))
                ),
                self.default,
            )
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()  # bounded: keys come and go
        self._cache[(key_id, alias)] = info
        return info
