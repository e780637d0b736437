"""Organizer accounts: argon2 hashes, roles, and login throttling kept in the audit log.

Failed logins are AuditEntry rows, so the throttle is shared by every web worker process
and an admin sees the attempts on the audit page. The throttle is keyed on the account and
the client's address together, and slows down rather than locks: a stranger guessing from
their own address only delays themselves; the organizer, from theirs, can still log in."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import AuditEntry, User, utcnow
from gateway.web.labels import N_


class Role(StrEnum):
    VIEWER = "viewer"
    MODERATOR = "moderator"
    ADMIN = "admin"
    VOLUNTEER = "volunteer"  # the desk and the post, nothing else


_RANK = {Role.VIEWER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}
# Beside the ladder: a volunteer works the desk and the post; moderators and admins may too.
_DESK = frozenset({Role.VOLUNTEER, Role.MODERATOR, Role.ADMIN})

THROTTLE_WINDOW = timedelta(days=1)  # failures older than this, or before a login, are forgiven
FREE_FAILURES = 5  # per account from one address; then each try waits, twice as long each time
FREE_FAILURES_PER_ADDRESS = 30  # all accounts from one address (one guesser, many names)
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)

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
        raise ValueError(N_("username is empty"))
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}: one of admin, moderator, viewer")
    if len(password) < 8:
        raise ValueError(N_("password must have at least 8 characters"))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise ValueError(N_("password must have at least 8 characters"))
    user.password_hash = _hasher.hash(password)


def retry_delay(failures: int, free: int) -> timedelta:
    """The wait after the last failure: none for the first `free`, then 30 s doubling to
    15 min."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 20), MAX_DELAY)


def throttled(session: Session, username: str, ip: str) -> timedelta | None:
    """How long this address must still wait before trying this account again (None: it may
    try now). Counts failures since the last good login from the same address."""
    now = utcnow()
    mark = f"ip={ip}"
    since = max(now - THROTTLE_WINDOW, session.scalar(
        select(func.max(AuditEntry.at)).where(
            AuditEntry.action == "login", AuditEntry.username == username[:100],
            AuditEntry.detail == mark)) or now - THROTTLE_WINDOW)
    failed = (AuditEntry.action == "login_failed", AuditEntry.at > since,
              AuditEntry.detail == mark)
    waits = []
    for where, free in (((*failed, AuditEntry.username == username[:100]), FREE_FAILURES),
                        (failed, FREE_FAILURES_PER_ADDRESS)):
        count, last = session.execute(
            select(func.count(), func.max(AuditEntry.at)).where(*where)).one()
        if last is not None and (delay := retry_delay(count, free)):
            waits.append(last + delay - now)
    wait = max(waits, default=timedelta(0))
    return wait if wait > timedelta(0) else None


def record_failure(session: Session, username: str, ip: str) -> None:
    session.add(AuditEntry(username=username[:100], action="login_failed", detail=f"ip={ip}"))


def authenticate(session: Session, username: str, password: str, ip: str) -> User | None:
    """The active user with this password, or None; a failure is recorded for the throttle.
    The login itself is recorded by the caller once any second factor is given. The caller
    commits."""
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
        record_failure(session, username, ip)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def record_login(session: Session, user: User, ip: str) -> None:
    session.add(AuditEntry(username=user.username, action="login", detail=f"ip={ip}"))
