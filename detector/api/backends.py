"""The key backends the API reads inventories from and acts through."""

from __future__ import annotations

import os
from collections.abc import Mapping

from detector.adapters.keys import load_backend
from detector.adapters.responder import BackendRouter
from detector.config import Settings
from detector.domain.keys import KeyBackend, KeyBackendError


def configured_names(settings: Settings) -> list[str]:
    """Backends the settings point at: pkcs11 when a module is set, aws-kms when a region or endpoint is."""
    names = []
    if settings.hsm.module or os.environ.get("PKCS11_MODULE"):
        names.append("pkcs11")
    if settings.aws.region or settings.aws.endpoint_url:
        names.append("aws-kms")
    return names


class Backends:
    """Backends by name; given ones (tests, embedding) or those loaded from the settings on first use."""

    def __init__(self, settings: Settings, given: Mapping[str, KeyBackend] | None = None) -> None:
        """Route keys like the runner does (catalog ``backend``, else ``response.default_backend``)."""
        self.settings = settings
        self.router = BackendRouter(settings)
        self._given = dict(given) if given is not None else None
        self._loaded: dict[str, KeyBackend] = dict(given or {})

    def names(self) -> list[str]:
        """The configured backends, for inventories and readiness."""
        return sorted(self._given) if self._given is not None else configured_names(self.settings)

    def get(self, name: str) -> KeyBackend:
        """The backend called ``name``; KeyBackendError (or ConfigError) when it is not configured."""
        if name not in self._loaded:
            if self._given is not None:
                raise KeyBackendError(f"key backend {name!r} is not configured in this API")
            self._loaded[name] = load_backend(name, self.settings)
        return self._loaded[name]

    def __call__(self, key_id: str) -> KeyBackend:
        """The backend that holds ``key_id``."""
        return self.get(self.router.name_for(key_id))
