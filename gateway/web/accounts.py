"""Organizer accounts: argon2 hashes, roles, and login throttling kept in the audit log.

Failed logins are AuditEntry rows, so the throttle is shared by every web worker process
and an admin sees the attempts on the audit page."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.models import AuditEntry, User, utcnow


class Role(StrEnum):
    VIEWER = "viewer"
    MODERATOR = "moderator"
    ADMIN = "admin"
    VOLUNTEER = "volunteer"  # the desk and the post, nothing else


_RANK = {Role.VIEWER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}
# Beside the ladder: a volunteer works the desk and the post; moderators and admins may too.
_DESK = frozenset({Role.VOLUNTEER, Role.MODERATOR, Role.ADMIN})

THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_MAX_FAILURES = 5

_hasher = PasswordHasher()
# Verified against when the username does not exist, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("no such user: constant-time refusal")


def role_allows(role: str, needed: str) -> bool:
    try:
        role, needed = Role(role), Role(needed)
    except ValueError:
        return False
    if needed == Role.VOLUNTEER:
        return role in _DESK
    if role == Role.VOLUNTEER:
        return False
    return _RANK[role] >= _RANK[needed]


def create_user(session: Session, username: str, password: str, role: str = "admin") -> User:
    """Add an organizer. Raises ValueError when the name is taken, the role unknown or the
    password too short."""
    username = username.strip()
    if not username:
        raise ValueError("username is empty")
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}: one of admin, moderator, viewer")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    user.password_hash = _hasher.hash(password)


def throttled(session: Session, username: str, ip: str) -> bool:
    """Too many recent failures for this name or from this address."""
    since = utcnow() - THROTTLE_WINDOW
    failures = session.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.at >= since, AuditEntry.action == "login_failed",
            or_(AuditEntry.username == username[:100], AuditEntry.detail == f"ip={ip}")))
    return (failures or 0) >= THROTTLE_MAX_FAILURES


def authenticate(session: Session, username: str, password: str, ip: str) -> User | None:
    """The active user with this password, or None; a failure is recorded for the throttle.
    The caller commits."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None:
            _hasher.verify(_DUMMY_HASH, password)
            ok = False
        else:
            ok = _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        session.add(AuditEntry(username=username[:100], action="login_failed",
                               detail=f"ip={ip}"))
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.add(AuditEntry(username=user.username, action="login", detail=f"ip={ip}"))
    return user
