"""The ``users`` table: KeyWatch users, their roles, their linked Slack accounts and API tokens."""

from __future__ import annotations

import builtins
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from detector.adapters.store import tables as t
from detector.adapters.store.engine import StoreError, advisory_lock
from detector.adapters.store.rows import to_dt, to_ts
from detector.adapters.store.store import Store
from detector.domain.events import format_ts
from detector.domain.users import (
    Role,
    User,
    UserError,
    UserStateError,
    check_disable,
    check_name,
    check_slack_user_id,
)

TOKEN_PREFIX = "kw_"  # noqa: S105 - a prefix that makes leaked tokens easy to find, not a secret
USERS_LOCK = "keywatch.users"  # serializes disables on PostgreSQL, so two never remove the last admin


class DuplicateUserError(StoreError):
    """A user with that name, or that Slack account, already exists."""


class UnknownUserError(StoreError):
    """No user has that name."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user as admins see them: whether an API token is set, never its hash."""

    user: User
    has_token: bool
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the API's ``GET /v1/users`` and ``keywatch users list --json``)."""
        u = self.user
        return {"name": u.name, "role": u.role.label, "slack_user_id": u.slack_user_id,
                "disabled": u.disabled, "has_token": self.has_token,
                "created_at": format_ts(self.created_at)}  # fmt: skip


def new_api_token() -> str:
    """A fresh random API bearer token (``kw_`` and 43 URL-safe characters); shown once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored in ``users.token_hash`` instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserRepository:
    """Add and look up users in the store's ``users`` table."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        """Work on ``store`` (migrated); ``clock`` stamps ``created_at``."""
        self._store = store
        self._clock = clock

    def add(self, name: str, role: Role | str, slack_user_id: str | None = None) -> User:
        """Add a user; DuplicateUserError when the name or the Slack id is taken."""
        user = User(
            check_name(name),
            role if isinstance(role, Role) else Role.parse(role),
            check_slack_user_id(slack_user_id) if slack_user_id is not None else None,
        )
        row = {
            "name": user.name,
            "role": user.role.label,
            "slack_user_id": user.slack_user_id,
            "created_at": to_dt(self._clock()),
            "disabled": False,
        }
        try:
            with self._store.writing() as conn:
                self._refuse_duplicate(conn, user)
                conn.execute(t.users.insert().values(row))
        except sa.exc.IntegrityError:  # lost a race with another writer
            raise DuplicateUserError(f"user {user.name} or Slack id {user.slack_user_id} exists") from None
        return user

    def get(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        return self._one(t.users.c.name == name)

    def by_slack_id(self, slack_user_id: str) -> User | None:
        """The user linked to Slack member ``slack_user_id``, or None."""
        return self._one(t.users.c.slack_user_id == slack_user_id)

    def by_token_hash(self, token_hash: str) -> User | None:
        """The user whose API token hashes to ``token_hash``, or None."""
        return self._one(t.users.c.token_hash == token_hash)

    def set_token_hash(self, name: str, token_hash: str | None) -> None:
        """Replace (None: revoke) the API token hash of user ``name``; UnknownUserError when there is none."""
        where = t.users.c.name == name
        with self._store.writing() as conn:
            if conn.execute(t.users.update().where(where).values(token_hash=token_hash)).rowcount != 1:
                raise UnknownUserError(f"no user {name}")

    def issue_token(self, name: str) -> str:
        """Give user ``name`` a new API token (the old one stops working) and return it, once.

        UnknownUserError when there is no such user; UserStateError when the user is disabled (a
        token they could not use would only mislead).
        """
        check_name(name)  # UserError: a name no user can have (control characters, too long)
        token = new_api_token()
        c = t.users.c
        with self._store.writing() as conn:
            enabled = sa.and_(c.name == name, c.disabled == sa.false())
            if conn.execute(t.users.update().where(enabled).values(token_hash=hash_token(token))).rowcount:
                return token
            if conn.execute(sa.select(c.name).where(c.name == name)).first() is None:
                raise UnknownUserError(f"no user {name}")
        raise UserStateError(f"user {name} is disabled: a new token would not work")

    def disable(self, name: str) -> User:
        """Disable user ``name`` and revoke their token (both at once; disabling twice is harmless).

        UnknownUserError when there is no such user; UserStateError when ``name`` is the last
        enabled admin (:func:`detector.domain.users.check_disable`).
        """
        check_name(name)
        with self._store.writing() as conn:
            advisory_lock(conn, USERS_LOCK)
            concerned = sa.or_(t.users.c.name == name, t.users.c.role == Role.ADMIN.label)
            rows = conn.execute(sa.select(t.users).where(concerned)).mappings()
            users = [user_from_row(row) for row in rows]
            target = next((u for u in users if u.name == name), None)
            if target is None:
                raise UnknownUserError(f"no user {name}")
            check_disable(target, users)
            where = t.users.c.name == name
            conn.execute(t.users.update().where(where).values(disabled=True, token_hash=None))
        return replace(target, disabled=True)

    def enable(self, name: str) -> tuple[User, str]:
        """Enable a disabled user again with a new API token, returned once (the old one stays revoked).

        UnknownUserError when there is no such user; UserStateError when the user is not disabled
        (enabling them would silently replace the token they use).
        """
        check_name(name)
        token = new_api_token()
        c = t.users.c
        with self._store.writing() as conn:
            disabled = sa.and_(c.name == name, c.disabled == sa.true())
            enabled = {"disabled": False, "token_hash": hash_token(token)}
            changed = conn.execute(t.users.update().where(disabled).values(**enabled))
            row = conn.execute(sa.select(t.users).where(c.name == name)).mappings().first()
        if row is None:
            raise UnknownUserError(f"no user {name}")
        if not changed.rowcount:
            raise UserStateError(f"user {name} is not disabled: rotate their token instead")
        return user_from_row(row), token

    def list(self) -> builtins.list[User]:
        """Every user, by name."""
        return [a.user for a in self.accounts()]

    def accounts(self) -> builtins.list[Account]:
        """Every user with whether a token is set, by name (the hash itself is never read)."""
        c = t.users.c
        has_token = c.token_hash.is_not(None).label("has_token")
        query = sa.select(c.name, c.role, c.slack_user_id, c.disabled, c.created_at, has_token)
        with self._store.reading() as conn:
            rows = conn.execute(query.order_by(c.name)).mappings().all()
        return [Account(user_from_row(r), bool(r["has_token"]), to_ts(r["created_at"])) for r in rows]

    def _one(self, where: sa.ColumnElement[bool]) -> User | None:
        with self._store.reading() as conn:
            row = conn.execute(sa.select(t.users).where(where)).mappings().first()
        return user_from_row(row) if row else None

    @staticmethod
    def _refuse_duplicate(conn: sa.Connection, user: User) -> None:
        c = t.users.c
        clash = c.name == user.name
        if user.slack_user_id is not None:
            clash = sa.or_(clash, c.slack_user_id == user.slack_user_id)
        found = conn.execute(sa.select(c.name, c.slack_user_id).where(clash)).first()
        if found is None:
            return
        if found.name == user.name:
            raise DuplicateUserError(f"user {user.name} already exists")
        raise DuplicateUserError(f"Slack id {user.slack_user_id} already belongs to user {found.name}")


def user_from_row(row: Any) -> User:
    """A User from a ``users`` row; a role the code does not know is a StoreError."""
    try:
        role = Role.parse(row["role"])
    except UserError:
        raise StoreError(f"user {row['name']} has an unknown role {row['role']!r} in the store") from None
    return User(row["name"], role, row["slack_user_id"], bool(row["disabled"]))
