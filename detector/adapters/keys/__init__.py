"""Key backends, found by name through the ``keywatch.key_backends`` entry points.

Each entry point names a class with ``from_settings(settings) -> KeyBackend``; KeyWatch ships
``pkcs11`` (python-pkcs11) and ``aws-kms`` (boto3). Another package adds a backend by declaring an
entry point in the same group.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, cast

from detector.config import Settings
from detector.domain.errors import ConfigError
from detector.domain.keys import KeyBackend

GROUP = "keywatch.key_backends"


class BackendFactory(Protocol):
    """What an entry point must name: a class built from the settings."""

    def from_settings(self, settings: Settings) -> KeyBackend:
        """Build the backend."""
        ...


def backend_names() -> list[str]:
    """Names of the installed key backends, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_backend(name: str, settings: Settings) -> KeyBackend:
    """Build the backend registered as ``name``; ConfigError listing the available ones if it cannot."""
    available = ", ".join(backend_names()) or "none"
    matches = list(entry_points(group=GROUP, name=name))
    if not matches:
        raise ConfigError(f"unknown key backend {name!r}; available: {available}")
    return _factory(matches[0], available).from_settings(settings)


def _factory(entry: EntryPoint, available: str) -> BackendFactory:
    """Import the class an entry point names."""
    try:
        return cast(BackendFactory, entry.load())
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"key backend {entry.name!r} cannot be loaded ({exc}); available: {available}"
        ) from exc
