"""The REST API: FastAPI app, bearer-token auth, one router per resource under ``/v1``."""

from __future__ import annotations

from detector.api.app import create_app

__all__ = ["create_app"]
