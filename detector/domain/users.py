"""KeyWatch users and their roles: analysts look, responders act, admins do everything.

>>> Role.ANALYST < Role.RESPONDER < Role.ADMIN
True
>>> Role.RESPONDER.can_change_keys, Role.ANALYST.can_approve
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from detector.domain.errors import KeyWatchError

MAX_NAME = 128  # the users.name column
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,62}")  # workspace (U…) and Enterprise Grid (W…) ids
# A letter or digit, then letters, digits and . _ @ + - (no spaces, slashes, control or bidi
# characters: names appear in the ledger, in Slack and in file paths people read).
NAME = re.compile(r"[^\W_][\w.@+-]{0,127}")


class UserError(KeyWatchError):
    """A user, role or permission problem; the message says which in one line."""


class PermissionDeniedError(UserError):
    """The user's role does not allow what was asked; the message names the role needed."""


class UserStateError(UserError):
    """A change the user's current state forbids (the last enabled admin, a disabled user's token)."""


class Permission(StrEnum):
    """Things a user may be allowed to do."""

    VIEW = "view"
    APPROVE = "approve"
    RUN_PLAYBOOKS = "run_playbooks"
    CHANGE_KEYS = "change_keys"
    MANAGE_USERS = "manage_users"

    @property
    def doing(self) -> str:
        """The permission as an activity, for messages."""
        return _DOING[self]


_DOING = {
    Permission.VIEW: "viewing incidents",
    Permission.APPROVE: "approving or denying a playbook step",
    Permission.RUN_PLAYBOOKS: "running playbooks",
    Permission.CHANGE_KEYS: "disabling or changing keys",
    Permission.MANAGE_USERS: "managing users",
}


class Role(StrEnum):
    """Ordered roles (by :attr:`rank`, not alphabetically); a role may do all the roles below it may."""

    ANALYST = "analyst"
    RESPONDER = "responder"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """1 for analyst, 2 for responder, 3 for admin."""
        return _RANK[self]

    def __lt__(self, other: str) -> bool:
        """Order by rank."""
        return self.rank < Role(other).rank

    def __le__(self, other: str) -> bool:
        """Order by rank."""
        return self.rank <= Role(other).rank

    def __gt__(self, other: str) -> bool:
        """Order by rank."""
        return self.rank > Role(other).rank

    def __ge__(self, other: str) -> bool:
        """Order by rank."""
        return self.rank >= Role(other).rank

    @property
    def label(self) -> str:
        """The name as stored and shown."""
        return self.value

    @classmethod
    def parse(cls, text: str) -> Role:
        """Parse ``analyst``/``responder``/``admin`` (any case).

        >>> Role.parse("Responder")
        <Role.RESPONDER: 'responder'>
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(r.label for r in cls)
            raise UserError(f"unknown role {text!r} (expected one of {names})") from None

    def allows(self, permission: Permission) -> bool:
        """Whether this role may do ``permission``."""
        return self >= MIN_ROLE[permission]

    @property
    def can_approve(self) -> bool:
        """Approve or deny a playbook step waiting for a human."""
        return self.allows(Permission.APPROVE)

    @property
    def can_run_playbooks(self) -> bool:
        """Start, stop or revert playbook runs."""
        return self.allows(Permission.RUN_PLAYBOOKS)

    @property
    def can_change_keys(self) -> bool:
        """Disable, re-enable or rotate keys."""
        return self.allows(Permission.CHANGE_KEYS)

    @property
    def can_manage_users(self) -> bool:
        """Add users and change their roles."""
        return self.allows(Permission.MANAGE_USERS)


_RANK = {Role.ANALYST: 1, Role.RESPONDER: 2, Role.ADMIN: 3}

MIN_ROLE: dict[Permission, Role] = {
    Permission.VIEW: Role.ANALYST,
    Permission.APPROVE: Role.RESPONDER,
    Permission.RUN_PLAYBOOKS: Role.RESPONDER,
    Permission.CHANGE_KEYS: Role.RESPONDER,
    Permission.MANAGE_USERS: Role.ADMIN,
}


def needed_roles(permission: Permission) -> str:
    """The roles that allow ``permission``, in words.

    >>> needed_roles(Permission.APPROVE)
    'responder or admin'
    """
    return " or ".join(r.label for r in Role if r.allows(permission))


@dataclass(slots=True, frozen=True)
class User:
    """A person who works KeyWatch incidents; ``slack_user_id`` links their Slack account."""

    name: str
    role: Role
    slack_user_id: str | None = None
    disabled: bool = False

    def may(self, permission: Permission) -> bool:
        """Whether this user may do ``permission`` (a disabled user may do nothing)."""
        return not self.disabled and self.role.allows(permission)

    def require(self, permission: Permission) -> None:
        """Raise PermissionDeniedError, naming the roles needed, unless this user may do ``permission``.

        >>> User("ann", Role.ANALYST).require(Permission.APPROVE)
        Traceback (most recent call last):
        ...
        detector.domain.users.PermissionDeniedError: ann is an analyst: approving or denying \
a playbook step needs the responder or admin role
        """
        if self.disabled:
            raise PermissionDeniedError(f"user {self.name} is disabled")
        if not self.role.allows(permission):
            raise PermissionDeniedError(
                f"{self.name} is {_article(self.role.label)} {self.role.label}: "
                f"{permission.doing} needs the {needed_roles(permission)} role"
            )


def check_disable(target: User, users: Iterable[User]) -> None:
    """Raise UserStateError when disabling ``target`` would leave no enabled admin.

    Nobody could manage users any more (only admins add them or give out tokens), so the last
    enabled admin stays, whoever asks; another admin may disable themselves, and others.

    >>> ada, bo = User("ada", Role.ADMIN), User("bo", Role.ADMIN)
    >>> check_disable(ada, [ada, bo])
    >>> check_disable(ada, [ada, User("bo", Role.ADMIN, disabled=True)])
    Traceback (most recent call last):
    ...
    detector.domain.users.UserStateError: ada is the last enabled admin: disabling them would leave \
nobody to manage users; add another admin first
    """
    if target.role is not Role.ADMIN or target.disabled:
        return
    if not any(u.role is Role.ADMIN and not u.disabled and u.name != target.name for u in users):
        raise UserStateError(
            f"{target.name} is the last enabled admin: disabling them would leave nobody to manage users; "
            "add another admin first"
        )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def check_name(name: str) -> str:
    """``name`` when it is a valid user name: a letter or digit, then letters, digits and ``._@+-``.

    >>> check_name("rita.o@example.org")
    'rita.o@example.org'
    >>> for bad in ("../admin", "eve\u202egnp.exe", "a b"):
    ...     try:
    ...         check_name(bad)
    ...     except UserError:
    ...         print("refused")
    refused
    refused
    refused
    """
    if not NAME.fullmatch(name) or ".." in name:
        raise UserError(f"invalid user name {name[:MAX_NAME]!r}: use 1-{MAX_NAME} letters, digits and "
                        ". _ @ + - (starting with a letter or digit, no '..')")  # fmt: skip
    return name


def check_slack_user_id(slack_user_id: str) -> str:
    """``slack_user_id`` when it looks like a Slack member id (``U…`` or ``W…``, upper case).

    >>> check_slack_user_id("U024BE7LH")
    'U024BE7LH'
    """
    if not SLACK_USER_ID.fullmatch(slack_user_id):
        shown = slack_user_id[:64]
        raise UserError(f"invalid Slack user id {shown!r}: expected an id such as U024BE7LH")
    return slack_user_id
