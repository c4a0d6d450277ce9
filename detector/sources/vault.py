"""HashiCorp Vault file audit device entries for the transit secrets engine.

Decisions
---------
* Only ``type == "response"`` entries produce events. Vault writes a response entry for
  every request it handles, including those refused by the token/ACL check: on that path
  ``handleRequest`` logs the request entry with the error and ``handleCancelableRequest``
  then logs the response entry with the same error (vault/request_handling.go). Request
  entries are therefore skipped and counted, and a denied request yields exactly one
  ``denied`` event. Pairing an unmatched request entry with its absent response would need
  state across records, which a per-record parser does not keep.
* A path is transit when ``request.mount_type == "transit"``; ``request.mount_point``
  (Vault 1.13+) gives the mount exactly, otherwise the mount is everything before the
  transit action (``encrypt``, ``keys``, ``datakey``...). Entries without ``mount_type``
  (older Vault) are recognised by the path alone. Other mounts (``sys/``, ``auth/``,
  ``secret/``...) and transit paths that use no key (``random``, ``hash``) are skipped.
* ``key_id`` is ``<namespace path><mount>/<key name>``; ``*`` for key listings.
* ``operation`` is the transit action, ``keys/<verb>`` for key management.
* Outcome: no ``error`` is success, "permission denied" is denied, any other error is
  error. HMAC'd values (``hmac-sha256:...``) are kept as they are.
* ``resource`` is the transit request's ``context`` parameter (the derived-key context,
  base64 as the client sent it) when the audit device logs it in clear (``log_raw``, or
  ``context`` in the mount's ``audit_non_hmac_request_keys``). By default Vault HMACs every
  request string, and an ``hmac-sha256:`` value gives ``None``; so do ``batch_input``
  requests, which carry one context per item. KV reads (``secret/data/...``) are not
  transit paths, so they produce no event at all. The value is escaped and bounded as in
  :func:`~detector.sources._common.safe_resource`, never a reason to reject the entry.
"""

from __future__ import annotations

from typing import Any

from detector.domain.events import Event
from detector.domain.operations import OpClass, register_table
from detector.sources._common import (
    NO_KEY,
    ParseResult,
    check_str,
    derive_id,
    first_str,
    opt_dict,
    opt_str,
    req_str,
    safe_resource,
    to_ts,
)

SOURCE = "vault"

VAULT_OPERATIONS: dict[str, OpClass] = {
    **dict.fromkeys(("encrypt", "decrypt", "rewrap", "sign", "verify", "hmac", "cmac"), OpClass.DATA),
    **dict.fromkeys(("datakey/plaintext", "datakey/wrapped"), OpClass.DATA),
    **dict.fromkeys(("keys/read", "keys/list"), OpClass.READ),
    **dict.fromkeys(
        ("keys/create", "keys/rotate", "keys/config", "keys/import", "keys/import_version", "restore"),
        OpClass.ADMIN,
    ),
    # Export, backup and BYOK export release key material: never a routine read.
    **dict.fromkeys(("export", "backup", "byok-export"), OpClass.ADMIN),
    **dict.fromkeys(("keys/delete", "keys/trim"), OpClass.DESTRUCTIVE),
}
register_table(SOURCE, VAULT_OPERATIONS)

_NAMED = frozenset({"encrypt", "decrypt", "rewrap", "cmac", "backup"})
_NAMED_ALGO = frozenset({"sign", "verify", "hmac"})
_KEY_SUBPATHS = frozenset({"config", "rotate", "trim", "import", "import_version"})
_ACTIONS = _NAMED | _NAMED_ALGO | {"datakey", "keys", "export", "restore", "byok-export"}
_DENIED = "permission denied"
_HMAC_PREFIX = "hmac-sha256:"


def parse(obj: dict[str, Any]) -> ParseResult:
    """Parse one audit entry: a transit response becomes an event, the rest are skipped."""
    entry_type = req_str(obj, "type")
    if entry_type != "response":
        return ParseResult([], 1, "Vault request entry (its response entry carries the event)")
    request = opt_dict(obj, "request")
    located = _locate(request)
    if located is None:
        return ParseResult([], 1, "Vault entry outside the transit key paths")
    key_id, operation = located
    auth = opt_dict(obj, "auth")
    request_id = opt_str(request, "id", "request.id")
    event = Event(
        event_id=request_id or derive_id("vault", obj),
        ts=to_ts(obj.get("time"), "time"),
        key_id=key_id,
        operation=operation,
        principal=first_str(auth, ("display_name", "entity_id"), "auth.") or "unknown",
        source_ip=opt_str(request, "remote_address", "request.remote_address") or "",
        outcome=_outcome(obj.get("error")),
        source=SOURCE,
        user_agent=_user_agent(request),
        request_id=request_id,
        resource=_resource(request),
    )
    return ParseResult([event])


def _locate(request: dict[str, Any]) -> tuple[str, str] | None:
    """(key_id, operation) of a transit key path, or None when the entry is not one."""
    path = req_str(request, "path", "request.path").strip("/")
    mount_type = opt_str(request, "mount_type", "request.mount_type")
    if mount_type is not None and mount_type != "transit":
        return None
    mount_point = opt_str(request, "mount_point", "request.mount_point")
    verb = opt_str(request, "operation", "request.operation") or ""
    if mount_point is not None:
        mount = mount_point.strip("/")
        if not path.startswith(mount + "/"):
            return None
        found = _action(path[len(mount) + 1 :].split("/"), verb)
    else:
        mount, found = _split_on_action(path.split("/"), verb)
    if found is None or not mount:
        return None
    name, operation = found
    namespace = opt_str(opt_dict(request, "namespace", "request.namespace"), "path", "request.namespace.path")
    key_id = NO_KEY if name == NO_KEY else f"{namespace or ''}{mount}/{name}"
    return key_id, operation


def _split_on_action(segments: list[str], verb: str) -> tuple[str, tuple[str, str] | None]:
    """Without ``mount_point``: the rightmost split where the tail is a transit action."""
    for index in range(len(segments) - 1, 0, -1):
        if segments[index] in _ACTIONS:
            found = _action(segments[index:], verb)
            if found is not None:
                return "/".join(segments[:index]), found
    return "", None


def _action(tail: list[str], verb: str) -> tuple[str, str] | None:
    """(key name, operation) for a path tail below the mount, or None."""
    action, args = tail[0], tail[1:]
    if any(not part for part in args):
        return None
    if action in _NAMED and len(args) == 1:
        return args[0], action
    if action in _NAMED_ALGO and len(args) in (1, 2):
        return args[0], action
    if action == "datakey" and len(args) == 2 and args[0] in ("plaintext", "wrapped"):
        return args[1], f"datakey/{args[0]}"
    if action == "export" and len(args) in (2, 3):
        return args[1], "export"
    if action == "byok-export" and len(args) in (2, 3):
        return args[1], "byok-export"
    if action == "restore" and len(args) <= 1:
        return (args[0] if args else NO_KEY), "restore"
    if action == "keys":
        return _keys_action(args, verb)
    return None


def _keys_action(args: list[str], verb: str) -> tuple[str, str] | None:
    """``keys``, ``keys/<name>`` and ``keys/<name>/<subpath>``."""
    if not args:
        return NO_KEY, "keys/list"
    if len(args) == 1:
        kind = {"read": "read", "delete": "delete", "list": "list"}.get(verb, "create")
        return args[0], f"keys/{kind}"
    if len(args) == 2 and args[1] in _KEY_SUBPATHS:
        return args[0], f"keys/{args[1]}"
    return None


def _outcome(error: object) -> str:
    """success / denied / error from the entry's top-level ``error``."""
    if error is None or error == "":
        return "success"
    if not isinstance(error, str):
        check_str(error, "error")
    return "denied" if _DENIED in str(error).lower() else "error"


def _user_agent(request: dict[str, Any]) -> str | None:
    """``User-Agent`` when the audit device is configured to record that header."""
    headers = opt_dict(request, "headers", "request.headers")
    values = headers.get("user-agent")
    if isinstance(values, list) and values:
        return check_str(values[0], "request.headers.user-agent")
    return None


def _resource(request: dict[str, Any]) -> str | None:
    """The transit ``context`` parameter when it is logged in clear, else None."""
    data = request.get("data")
    if type(data) is not dict:
        return None
    context = data.get("context")
    if type(context) is not str or not context or context.startswith(_HMAC_PREFIX):
        return None
    return safe_resource(context)
