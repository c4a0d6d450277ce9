"""Guess the log format of one decoded record from a few cheap key checks."""

from __future__ import annotations

from detector.domain.errors import UnknownFormatError


def detect_format(obj: object) -> str:
    """Name of the format of ``obj`` (one of ``FORMATS`` except ``auto``).

    Raises
    ------
    UnknownFormatError
        When ``obj`` is not a JSON object or no format recognises its keys.

    Examples
    --------
    >>> detect_format({"event_id": "e1", "key_id": "k", "ts": "2024-01-01T00:00:00Z"})
    'canonical'
    >>> detect_format({"Records": []})
    'cloudtrail'
    >>> detect_format({"protoPayload": {}})
    'gcp'
    """
    if not isinstance(obj, dict):
        raise UnknownFormatError(f"record is a JSON {type(obj).__name__}, not an object")
    if "event_id" in obj and "key_id" in obj and "ts" in obj:
        return "canonical"
    if _is_cloudtrail(obj):
        return "cloudtrail"
    if "protoPayload" in obj:
        return "gcp"
    if _is_vault(obj):
        return "vault"
    if _is_azure(obj):
        return "azure"
    keys = ", ".join(sorted(str(k)[:32] for k in list(obj)[:8]))
    raise UnknownFormatError(f"no parser recognises a record with keys [{keys}]")


def _is_cloudtrail(obj: dict[str, object]) -> bool:
    """CloudTrail record, delivery file (``Records``) or EventBridge envelope."""
    if "eventSource" in obj or "eventVersion" in obj:
        return True
    if isinstance(obj.get("Records"), list):
        return True
    return "detail-type" in obj and "detail" in obj


def _is_vault(obj: dict[str, object]) -> bool:
    """Vault file audit device entry."""
    request = obj.get("request")
    return obj.get("type") in ("request", "response") and isinstance(request, dict) and "path" in request


def _is_azure(obj: dict[str, object]) -> bool:
    """Azure Key Vault AuditEvent resource-log record, or a ``records`` blob of them."""
    if isinstance(obj.get("records"), list):
        return True
    if "operationName" not in obj:
        return False
    if obj.get("category") == "AuditEvent":
        return True
    resource_id = obj.get("resourceId")
    return isinstance(resource_id, str) and "/VAULTS/" in resource_id.upper()
