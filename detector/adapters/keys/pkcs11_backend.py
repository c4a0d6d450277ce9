"""PKCS#11 key backend (python-pkcs11): contain keys inside the token itself.

An event's key_id resolves through ``settings.hsm.key_map``, then an object label, then a CKA_ID in
hex (``#`` prefix optional). A key is every key object sharing that label: a secret key, or the
private and public halves of a pair; operations act on all of them.

KeyWatch keeps its state in the token as private CKO_DATA objects (CKA_APPLICATION ``keywatch``,
JSON in CKA_VALUE), so it survives restarts and is guarded like the keys:

* ``keywatch-disabled:<label>``: the uses ``disable`` turned off, per object class; ``enable``
  turns exactly those back on, then deletes the record.
* ``keywatch-revoked:<label>``: written by ``revoke`` before it destroys the key: each object's
  class, type, CKA_ID, uses and protection flags, the public key material, and (with backup) the
  secret or private key wrapped with AES-KEY-WRAP-PAD under the AES key ``backup_key_label``, which
  never leaves the HSM. ``rollback_revoke`` unwraps from it.

Rotation gives ``<base>`` or ``<base>.v<N>`` the successor ``<base>.v<N+1>`` (same type, size, uses
and protection flags, fresh CKA_ID) and leaves the old key with DECRYPT/UNWRAP/VERIFY only.

Each operation opens its own logged-in session, one at a time per module in a process
(:func:`module_lock`). The PIN is never logged, raised or shown by repr.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as pk
from pydantic import SecretStr

from detector.config import Settings
from detector.domain.errors import ConfigError
from detector.domain.keys import (
    KEY_USES,
    PRODUCING_USES,
    ActionResult,
    BackendUnavailable,
    KeyBackend,
    KeyBackendError,
    KeyInfo,
    KeyState,
    Outcome,
    merge_uses,
    ordered_uses,
    split_version,
    state_of,
    successor_label,
)

log = logging.getLogger(__name__)
_MODULE_LOCKS: dict[str, threading.RLock] = {}
_MODULE_LOCKS_GUARD = threading.Lock()


def module_lock(module: str | Path) -> threading.RLock:
    """The lock every session on a PKCS#11 module in this process is opened and used under.

    A login belongs to the process, not the session, so one thread closing its session can log
    out another thread's; and SoftHSM2 aborts the whole process when threads open, log in and
    close sessions on one token at once (the API serves requests on a thread pool, beside the
    playbook runner). Operations take milliseconds, so taking turns costs little.
    """
    with _MODULE_LOCKS_GUARD:
        return _MODULE_LOCKS.setdefault(os.fspath(module), threading.RLock())


APPLICATION = "keywatch"
DISABLED = "keywatch-disabled:"
REVOKED = "keywatch-revoked:"
WRAP_MECHANISM = Mechanism.AES_KEY_WRAP_PAD
USES_BY_CLASS: dict[ObjectClass, tuple[Attribute, ...]] = {
    ObjectClass.SECRET_KEY: (
        *(Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.SIGN, Attribute.VERIFY),
        *(Attribute.WRAP, Attribute.UNWRAP, Attribute.DERIVE),
    ),
    ObjectClass.PRIVATE_KEY: (Attribute.DECRYPT, Attribute.SIGN, Attribute.UNWRAP, Attribute.DERIVE),
    ObjectClass.PUBLIC_KEY: (Attribute.ENCRYPT, Attribute.VERIFY, Attribute.WRAP, Attribute.DERIVE),
}
ALL_USES = USES_BY_CLASS[ObjectClass.SECRET_KEY]
PROTECTION = (Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.EXTRACTABLE)
PUBLIC_MATERIAL = {
    KeyType.EC: (Attribute.EC_PARAMS, Attribute.EC_POINT),
    KeyType.RSA: (Attribute.MODULUS, Attribute.PUBLIC_EXPONENT),
}
TRANSIENT = (
    *(pk.DeviceError, pk.DeviceMemory, pk.DeviceRemoved, pk.TokenNotPresent),
    *(pk.SessionClosed, pk.SessionCount, pk.SessionHandleInvalid),
)
UNMAPPED_CODES = {"0x68": "CKR_KEY_FUNCTION_NOT_PERMITTED", "0x6a": "CKR_KEY_NOT_WRAPPABLE"}

KEY_USES_KEPT = frozenset(KEY_USES) - PRODUCING_USES  # what a rotated-out key keeps
Uses = dict[str, list[str]]  # object class name -> use names


@dataclass(frozen=True)
class _Key:
    """The key objects one label (or CKA_ID) stands for."""

    ref: str
    objects: tuple[pkcs11.Key, ...]

    def get(self, object_class: ObjectClass) -> pkcs11.Key | None:
        """The object of that class, if any."""
        return next((o for o in self.objects if o.object_class == object_class), None)

    def uses_on(self, only: frozenset[str] | None = None) -> Uses:
        """Uses currently on, per object class, optionally limited to ``only``."""
        on = {_class(o).name: [u for u in _uses(o) if only is None or u in only] for o in self.objects}
        return {name: uses for name, uses in on.items() if uses}


class Pkcs11Backend:
    """Keys on one PKCS#11 token (SoftHSM2 in tests, a real HSM in production)."""

    name = "pkcs11"

    def __init__(
        self,
        module: str | Path,
        token_label: str,
        pin: SecretStr | str,
        *,
        key_map: Mapping[str, str] | None = None,
        backup_key_label: str | None = "keywatch-backup",
    ) -> None:
        self._module = str(module)
        self._token_label = token_label
        self._pin = pin if isinstance(pin, SecretStr) else SecretStr(pin)
        self._key_map = dict(key_map or {})
        self._backup_label = backup_key_label

    def __repr__(self) -> str:
        return f"Pkcs11Backend(module={self._module!r}, token_label={self._token_label!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Pkcs11Backend:
        """Build from ``settings.hsm``; unset values come from the PKCS11_* environment variables."""
        hsm = settings.hsm
        module = str(hsm.module or os.environ.get("PKCS11_MODULE", ""))
        label = hsm.token_label or os.environ.get("PKCS11_TOKEN_LABEL", "")
        pin = hsm.pin or SecretStr(os.environ.get("PKCS11_TOKEN_PIN", ""))
        wanted = {"hsm.module (PKCS11_MODULE)": module, "hsm.token_label (PKCS11_TOKEN_LABEL)": label}
        missing = [name for name, value in wanted.items() if not value]
        if not pin.get_secret_value():
            missing.append("hsm.pin (PKCS11_TOKEN_PIN)")
        if missing:
            raise ConfigError(f"the pkcs11 key backend needs {', '.join(missing)}")
        return cls(module, label, pin, key_map=hsm.key_map, backup_key_label=hsm.backup_key_label)

    def inventory(self) -> list[KeyInfo]:
        """Every labelled key on the token (not the backup key), then revoked keys with a record."""
        with self._session("inventory") as session:
            refs = {_ref(o) for cls in USES_BY_CLASS for o in session.get_objects({Attribute.CLASS: cls})}
            refs.discard(self._backup_label or "")
            live = [self._info(session, key) for ref in sorted(refs) if (key := _find(session, ref))]
            gone = {_label(o)[len(REVOKED) :] for o in _data_objects(session, REVOKED)} - refs
            return live + [self._revoked_info(session, ref) for ref in sorted(gone)]

    def describe(self, key_id: str) -> KeyInfo | None:
        """The key ``key_id`` resolves to; a revoked key is reported as destroyed."""
        with self._session("describe") as session:
            key = self._resolve(session, key_id)
            if key is not None:
                return self._info(session, key)
            ref = self._key_map.get(key_id, key_id)
            return self._revoked_info(session, ref) if _records(session, REVOKED + ref) else None

    def disable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Turn off every use that is on and remember them in ``keywatch-disabled:<label>``."""
        with self._session("disable") as session:
            key = self._resolve(session, key_id)
            if key is None:
                return self._result(Outcome.NOT_FOUND, key_id)
            on = key.uses_on()
            if not on:
                return self._result(Outcome.ALREADY_DISABLED, key_id, label=key.ref)
            if dry_run:
                return self._result(Outcome.DRY_RUN, key_id, label=key.ref, would_turn_off=on)
            # Record first: a crash before the attributes change leaves a record disable re-applies.
            _write_record(
                session, DISABLED + key.ref, {"uses": merge_uses(_remembered(session, key.ref), on)}
            )
            _set_uses(key, on, value=False)
            log.info("pkcs11: disabled %s (turned off %s)", key.ref, on)
            return self._result(Outcome.DISABLED, key_id, label=key.ref, turned_off=on)

    def enable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Turn on exactly the uses disable turned off, then forget them."""
        with self._session("enable") as session:
            key = self._resolve(session, key_id)
            if key is None:
                return self._result(Outcome.NOT_FOUND, key_id)
            remembered = _remembered(session, key.ref)
            if remembered is None:
                return self._result(Outcome.ALREADY_ENABLED, key_id, label=key.ref)
            if dry_run:
                return self._result(Outcome.DRY_RUN, key_id, label=key.ref, would_turn_on=remembered)
            _set_uses(key, remembered, value=True)
            _delete(_records(session, DISABLED + key.ref))
            log.info("pkcs11: enabled %s (turned on %s)", key.ref, remembered)
            return self._result(Outcome.ENABLED, key_id, label=key.ref, turned_on=remembered)

    def rotate(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Create ``<base>.v<N+1>`` like the key, then leave the key decrypt-only (idempotent)."""
        with self._session("rotate") as session:
            key = self._resolve(session, key_id)
            if key is None:
                return self._result(Outcome.NOT_FOUND, key_id)
            successor = successor_label(key.ref)
            exists = _find(session, successor) is not None
            remembered = _remembered(session, key.ref)
            producing = merge_uses(remembered, key.uses_on(), only=PRODUCING_USES)
            detail = {"label": key.ref, "successor": successor}
            if exists and not producing:
                return self._result(Outcome.ROTATED, key_id, **detail, already=True)
            if dry_run:
                return self._result(Outcome.DRY_RUN, key_id, **detail, create=not exists, turn_off=producing)
            if not exists:
                _create_successor(session, key, successor, merge_uses(remembered, key.uses_on()))
            if remembered is not None:  # a disabled key stays disabled; enable makes it decrypt-only
                kept = merge_uses(remembered, only=KEY_USES_KEPT)
                _write_record(session, DISABLED + key.ref, {"uses": kept})
            _set_uses(key, key.uses_on(PRODUCING_USES), value=False)
            log.info("pkcs11: rotated %s to %s", key.ref, successor)
            return self._result(Outcome.ROTATED, key_id, **detail, turned_off=producing)

    def revoke(
        self, key_id: str, *, approved: bool, backup: bool = True, dry_run: bool = False
    ) -> ActionResult:
        """Record (and with ``backup`` wrap) the key in ``keywatch-revoked:<label>``, then destroy it."""
        if not (approved or dry_run):
            raise KeyBackendError(f"revoking {key_id!r} destroys it and needs approval")
        with self._session("revoke") as session:
            key = self._resolve(session, key_id)
            if key is None:
                ref = self._key_map.get(key_id, key_id)
                gone = bool(_records(session, REVOKED + ref))
                return self._result(Outcome.ALREADY_REVOKED if gone else Outcome.NOT_FOUND, key_id)
            record = REVOKED + key.ref
            refusal = self._backup_refusal(key) if backup else None
            if refusal:
                return self._result(Outcome.FAILED, key_id, label=key.ref, reason=refusal, backup=None)
            objects = [_class(o).name for o in key.objects]
            if dry_run:
                return self._result(Outcome.DRY_RUN, key_id, label=key.ref, destroy=objects, backup=record)
            wrapper = self._backup_key(session) if backup else None
            entries = [_entry(o, wrapper) for o in key.objects]
            backup_key = self._backup_label if wrapper is not None else None
            # Earlier records (of a key since re-created under this label) are kept, never replaced.
            payload = {"at": time.time(), "backup_key": backup_key, "objects": entries}
            _write_record(session, record, payload, replace=False)
            _delete(key.objects)
            log.warning("pkcs11: revoked %s (backup %s)", key.ref, bool(wrapper))
            backup_label = record if wrapper else None
            return self._result(
                Outcome.REVOKED, key_id, label=key.ref, destroyed=objects, backup=backup_label
            )

    def rollback_revoke(self, key_id: str) -> ActionResult:
        """Unwrap the latest revoked key of that label from its record; raise if it has no backup.

        A live key under the label means there is nothing to restore (``already``); its records stay.
        """
        with self._session("rollback_revoke") as session:
            key = self._resolve(session, key_id)
            if key is not None:
                return self._result(Outcome.REVOKE_CANCELLED, key_id, label=key.ref, already=True)
            ref = self._key_map.get(key_id, key_id)
            records = _records(session, REVOKED + ref)
            if not records:
                return self._result(Outcome.NOT_FOUND, key_id)
            latest = max(records, key=lambda r: float(_payload(r)["at"]))
            _restore(session, ref, _payload(latest))
            latest.destroy()
            log.warning("pkcs11: restored revoked key %s from its backup", ref)
            return self._result(Outcome.REVOKE_CANCELLED, key_id, label=ref)

    # -- helpers that need the settings

    @contextmanager
    def _session(self, what: str) -> Iterator[pkcs11.Session]:
        """A logged-in read/write session, under :func:`module_lock`; failures become KeyBackendError."""
        with module_lock(self._module), self._open_session(what) as session:
            yield session

    @contextmanager
    def _open_session(self, what: str) -> Iterator[pkcs11.Session]:
        try:
            lib = pkcs11.lib(self._module)
        except pk.PKCS11Error as exc:
            raise BackendUnavailable(f"PKCS#11 module {self._module} cannot be loaded: {exc}") from exc
        with _translated(what):
            try:
                token = lib.get_token(token_label=self._token_label)
            except pk.NoSuchToken as exc:
                msg = f"PKCS#11 token {self._token_label!r} not found in {self._module}"
                raise BackendUnavailable(msg) from exc
            with self._open(token) as session:
                yield session

    def _open(self, token: pkcs11.Token) -> pkcs11.Session:
        """Open and log in; reuse the login another session of this process already holds."""
        # PKCS#11 logins are per process: a second C_Login fails, and python-pkcs11 then leaves the
        # half-open session behind, so this path is for the rare process that shares its token.
        try:
            return token.open(rw=True, user_pin=self._pin.get_secret_value())
        except pk.UserAlreadyLoggedIn:
            return token.open(rw=True)

    def _resolve(self, session: pkcs11.Session, key_id: str) -> _Key | None:
        """Key by key_map, label, then CKA_ID hex."""
        return _find(session, self._key_map.get(key_id, key_id))

    def _info(self, session: pkcs11.Session, key: _Key) -> KeyInfo:
        """KeyInfo for a live key."""
        on = [u for uses in key.uses_on().values() for u in uses]
        disabled = _remembered(session, key.ref) is not None
        state = state_of(on, disabled=disabled)
        return self._key_info(key.ref, _key_type(key.objects[0]), ordered_uses(on), state)

    def _revoked_info(self, session: pkcs11.Session, ref: str) -> KeyInfo:
        """KeyInfo for a key destroyed by revoke."""
        payloads = [_payload(r) for r in _records(session, REVOKED + ref)]
        entries = max(payloads, key=lambda p: float(p["at"]))["objects"]
        key_type = entries[0]["key_type"] if entries else "unknown"
        return self._key_info(ref, key_type, (), KeyState.DESTROYED)

    def _key_info(self, ref: str, key_type: str, uses: tuple[str, ...], state: KeyState) -> KeyInfo:
        return KeyInfo(ref, self.name, ref, key_type, uses, state, split_version(ref)[1])

    def _backup_refusal(self, key: _Key) -> str | None:
        """Why the key cannot be backed up before revoke, or None."""
        if not self._backup_label:
            return "no backup key is configured (hsm.backup_key_label); revoke with backup=False"
        for obj in key.objects:
            if _class(obj) != ObjectClass.PUBLIC_KEY:
                flags = _attributes(obj, [Attribute.EXTRACTABLE, Attribute.WRAP_WITH_TRUSTED])
                if not flags[Attribute.EXTRACTABLE] or flags[Attribute.WRAP_WITH_TRUSTED]:
                    return "the key is not extractable, so it cannot be wrapped; revoke with backup=False"
        return None

    def _backup_key(self, session: pkcs11.Session) -> pkcs11.WrapMixin:
        """The AES wrapping key for revoke backups, created (non-extractable) if missing."""
        with suppress(pk.NoSuchKey):
            return cast(pkcs11.WrapMixin, session.get_key(ObjectClass.SECRET_KEY, label=self._backup_label))
        log.info("pkcs11: creating backup key %s", self._backup_label)
        template = {Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True, Attribute.PRIVATE: True}
        flags = MechanismFlag.WRAP | MechanismFlag.UNWRAP
        key = session.generate_key(
            KeyType.AES, 256, label=self._backup_label, store=True, capabilities=flags, template=template
        )
        return cast(pkcs11.WrapMixin, key)

    def _result(self, outcome: Outcome, key_id: str, **detail: Any) -> ActionResult:
        return ActionResult(outcome, key_id, self.name, detail)


# -- token objects


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn python-pkcs11 errors into KeyBackendError (BackendUnavailable when transient)."""
    try:
        yield
    except TRANSIENT as exc:
        raise BackendUnavailable(f"PKCS#11 token unavailable during {what}: {type(exc).__name__}") from exc
    except pk.PKCS11Error as exc:
        text = str(exc)
        reason = next((name for code, name in UNMAPPED_CODES.items() if code in text), text)
        raise KeyBackendError(f"PKCS#11 {what} failed: {type(exc).__name__} {reason}".strip()) from exc


def _class(obj: pkcs11.Object) -> ObjectClass:
    return ObjectClass(cast(int, obj.object_class))


def _label(obj: pkcs11.Object) -> str:
    return str(obj[Attribute.LABEL])


def _ref(obj: pkcs11.Object) -> str:
    """How KeyWatch names a key object: its label, else ``#`` and its CKA_ID in hex."""
    return _label(obj) or "#" + bytes(obj[Attribute.ID]).hex()


def _find(session: pkcs11.Session, ref: str) -> _Key | None:
    """The key objects labelled ``ref``, else those whose CKA_ID is ``ref`` in hex."""
    found = _keys(session, {Attribute.LABEL: ref}) if ref else []
    if not found:
        with suppress(ValueError):
            if cka_id := bytes.fromhex(ref.removeprefix("#")):
                found = _keys(session, {Attribute.ID: cka_id})
    refs = {_ref(o) for o in found}
    if len(refs) > 1:
        raise KeyBackendError(f"{ref!r} matches several keys: {', '.join(sorted(refs))}")
    return _Key(refs.pop(), tuple(cast(pkcs11.Key, o) for o in found)) if found else None


def _keys(session: pkcs11.Session, query: dict[Attribute, Any]) -> list[pkcs11.Object]:
    return [o for o in session.get_objects(query) if o.object_class in USES_BY_CLASS]


def _attributes(obj: pkcs11.Object, attrs: Iterable[Attribute]) -> dict[Attribute, Any]:
    """Several attributes in one call, keyed by Attribute (python-pkcs11 returns plain ints)."""
    return {Attribute(attr): value for attr, value in obj.get_attributes(list(attrs)).items()}


def _uses(obj: pkcs11.Object) -> list[str]:
    """Uses currently on for one key object."""
    return [attr.name for attr, on in _attributes(obj, USES_BY_CLASS[_class(obj)]).items() if on]


def _set_uses(key: _Key, uses: Uses, *, value: bool) -> None:
    """Set the named uses on each object of the key."""
    for obj in key.objects:
        for use in uses.get(_class(obj).name, []):
            obj[Attribute[use]] = value


def _data_objects(session: pkcs11.Session, prefix: str) -> list[pkcs11.Object]:
    """KeyWatch's records whose label starts with ``prefix``."""
    query = {Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: APPLICATION}
    return [o for o in session.get_objects(query) if _label(o).startswith(prefix)]


def _records(session: pkcs11.Session, label: str) -> list[pkcs11.Object]:
    """KeyWatch's records labelled exactly ``label``."""
    return [o for o in _data_objects(session, label) if _label(o) == label]


def _payload(record: pkcs11.Object) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(bytes(record[Attribute.VALUE])))


def _remembered(session: pkcs11.Session, ref: str) -> Uses | None:
    """The uses disable turned off on ``ref``, or None if it is not disabled by KeyWatch."""
    records = _records(session, DISABLED + ref)  # two only after a crash mid-update: take the union
    return merge_uses(*(_payload(r)["uses"] for r in records)) if records else None


def _write_record(
    session: pkcs11.Session, label: str, payload: Mapping[str, Any], *, replace: bool = True
) -> None:
    """Write the record ``label``; CKA_VALUE is read-only, so replace means create, then drop the old."""
    old = _records(session, label) if replace else []
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.APPLICATION: APPLICATION,
            Attribute.LABEL: label,
            Attribute.VALUE: json.dumps(payload, sort_keys=True).encode(),
        }
    )
    _delete(old)


def _delete(objects: Iterable[pkcs11.Object]) -> None:
    for obj in objects:
        obj.destroy()


def _key_type(obj: pkcs11.Key) -> str:
    """``AES-256``, ``RSA-2048``, ``EC``."""
    name = KeyType(obj.key_type).name
    with suppress(pk.PKCS11Error):
        return f"{name}-{obj.key_length}"
    return name


def _template(obj: pkcs11.Key, uses: Uses) -> dict[Attribute, Any]:
    """Uses (and, for secret and private keys, protection flags) for a key like ``obj``."""
    cls = _class(obj)
    wanted = set(uses.get(cls.name, []))
    template: dict[Attribute, Any] = dict.fromkeys(ALL_USES, pkcs11.DEFAULT)
    template |= {a: a.name in wanted for a in USES_BY_CLASS[cls]}
    if cls != ObjectClass.PUBLIC_KEY:
        template |= _attributes(obj, PROTECTION)
    return template


def _create_successor(session: pkcs11.Session, key: _Key, label: str, uses: Uses) -> None:
    """Generate a key like ``key`` under ``label``."""
    first = key.objects[0]
    new_id = os.urandom(len(bytes(first[Attribute.ID]))) if first[Attribute.ID] else b""
    if secret := key.get(ObjectClass.SECRET_KEY):
        length = None if secret.key_type in (KeyType.DES2, KeyType.DES3) else secret.key_length
        template = _template(secret, uses)
        session.generate_key(secret.key_type, length, id=new_id, label=label, store=True, template=template)
        return
    public, private = key.get(ObjectClass.PUBLIC_KEY), key.get(ObjectClass.PRIVATE_KEY)
    if public is None or private is None:
        raise KeyBackendError(f"cannot rotate {key.ref!r}: both halves of the key pair are needed")
    public_template, private_template = _template(public, uses), _template(private, uses)
    common: dict[str, Any] = {"id": new_id, "label": label, "store": True}
    if public.key_type == KeyType.EC:
        params = {Attribute.EC_PARAMS: public[Attribute.EC_PARAMS]}
        domain = session.create_domain_parameters(KeyType.EC, params, local=True)
        domain.generate_keypair(public_template=public_template, private_template=private_template, **common)
    elif public.key_type == KeyType.RSA:
        public_template[Attribute.PUBLIC_EXPONENT] = public[Attribute.PUBLIC_EXPONENT]
        bits = public[Attribute.MODULUS_BITS]
        session.generate_keypair(
            KeyType.RSA, bits, public_template=public_template, private_template=private_template, **common
        )
    else:
        raise KeyBackendError(
            f"cannot rotate {key.ref!r}: {KeyType(public.key_type).name} pairs are not supported"
        )


def _entry(obj: pkcs11.Key, wrapper: pkcs11.WrapMixin | None) -> dict[str, Any]:
    """What the revoke record keeps of one key object."""
    cls, key_type = _class(obj), KeyType(obj.key_type)
    entry: dict[str, Any] = {"class": cls.name, "key_type": key_type.name, "label": _label(obj)}
    entry |= {"id": bytes(obj[Attribute.ID]).hex(), "uses": _uses(obj)}
    if cls == ObjectClass.PUBLIC_KEY:
        material = _attributes(obj, PUBLIC_MATERIAL.get(key_type, ()))
        entry["public"] = {attr.name: bytes(value).hex() for attr, value in material.items()}
    else:
        entry["protection"] = {a.name: bool(v) for a, v in _attributes(obj, PROTECTION).items()}
        if wrapper is not None:
            wrapped = wrapper.wrap_key(obj, mechanism=WRAP_MECHANISM)
            entry["wrapped"] = base64.b64encode(wrapped).decode()
    return entry


def _restore(session: pkcs11.Session, ref: str, payload: Mapping[str, Any]) -> None:
    """Recreate the objects of a revoke record: unwrap secret and private keys, import public ones."""
    entries = payload["objects"]
    if any(e["class"] != ObjectClass.PUBLIC_KEY.name and "wrapped" not in e for e in entries):
        raise KeyBackendError(f"{ref!r} was revoked without a backup and cannot be restored")
    wrapper = cast(pkcs11.UnwrapMixin, session.get_key(ObjectClass.SECRET_KEY, label=payload["backup_key"]))
    for entry in entries:
        cls, key_type, label = ObjectClass[entry["class"]], KeyType[entry["key_type"]], entry["label"]
        uses = {a: a.name in entry["uses"] for a in USES_BY_CLASS[cls]}
        cka_id = bytes.fromhex(entry["id"])
        if cls == ObjectClass.PUBLIC_KEY:
            material = {Attribute[name]: bytes.fromhex(v) for name, v in entry["public"].items()}
            head = {Attribute.CLASS: cls, Attribute.KEY_TYPE: key_type, Attribute.TOKEN: True}
            session.create_object(head | {Attribute.LABEL: label, Attribute.ID: cka_id} | uses | material)
            continue
        template = dict.fromkeys(ALL_USES, pkcs11.DEFAULT) | uses
        template |= {Attribute[name]: flag for name, flag in entry["protection"].items()}
        data = base64.b64decode(entry["wrapped"])
        wrapper.unwrap_key(
            cls,
            key_type,
            data,
            id=cka_id,
            label=label,
            mechanism=WRAP_MECHANISM,
            store=True,
            template=template,
        )


if TYPE_CHECKING:  # mypy proves the class implements the port
    _CONFORMS: type[KeyBackend] = Pkcs11Backend
