"""Mail servers the gateway refused to talk to (an untrusted or wrong certificate, no
STARTTLS, a password that would travel in clear) are remembered in SQL, so the dashboard's
overview says so at once instead of mail silently not moving. The next good connection
clears it. Cursor rows `tls:<channel>`, value: the error (it names hosts, never writers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.mail.transport import TransportError
from gateway.models import Cursor, utcnow

log = logging.getLogger(__name__)

PREFIX = "tls:"
LABELS = {"smtp": "Outgoing mail (SMTP)", "imap-inbox": "The shared inbox (IMAP)",
          "imap-replies": "The reply mailbox (IMAP)"}


def record(session: Session, channel: str, error: str | None) -> None:
    """The outcome of one connection attempt; the caller commits. None: it went well."""
    row = session.get(Cursor, PREFIX + channel)
    if error is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(Cursor(name=PREFIX + channel, value=error[:200]))
    elif row.value != error[:200]:
        row.value, row.updated_at = error[:200], utcnow()


def record_now(session_factory: Callable[[], Session], channel: str, error: str | None) -> None:
    """The same in its own transaction; never raises (health must not stop the work)."""
    try:
        with session_factory() as session:
            record(session, channel, error)
            session.commit()
    except Exception:  # noqa: BLE001
        pass


@contextmanager
def watched(session_factory: Callable[[], Session], channel: str) -> Iterator[None]:
    """Around one use of a mail server: a refusal on security grounds is logged as an
    error and shown until a later use goes well (other errors pass through untouched)."""
    try:
        yield
    except TransportError as exc:
        log.error("%s: %s", LABELS.get(channel, channel), exc)
        record_now(session_factory, channel, str(exc))
        raise
    record_now(session_factory, channel, None)


def problems(session: Session) -> tuple[tuple[str, str, datetime], ...]:
    """(what, error, since) for each mail server currently refused."""
    # By primary key: the overview asks on every refresh.
    rows = session.scalars(select(Cursor).where(Cursor.name.in_([PREFIX + c for c in LABELS]))
                           .order_by(Cursor.name))
    return tuple((LABELS[r.name[len(PREFIX):]], r.value, r.updated_at) for r in rows)
