"""Send queued e-mails to writers. SMTP 4xx and timeouts retry from the database with
backoff; 5xx is recorded as a bounce (and a bad mailbox suppresses the writer). Each message
leaves with its own VERP envelope sender, so a later DSN names its outbound row. The To
header is added here from the sealed address."""

from __future__ import annotations

import email
import logging
import re
import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy

from sqlalchemy import Connection, Engine, bindparam, or_, select, update
from sqlalchemy.orm import Session

from gateway import connection_health, faults
from gateway.crypto import Keyring, keyring
from gateway.db import one_of
from gateway.mail.bounces import record_bounce, verp_address
from gateway.mail.transport import TransportError, open_smtp
from gateway.models import OutboundMail, utcnow
from gateway.pipeline.submission import backoff
from gateway.states import MailState as MS

log = logging.getLogger(__name__)


def _connect(session: Session, settings) -> smtplib.SMTP:
    """A refusal on security grounds is an error in the log and on the dashboard, and the
    mail waits (retried with backoff): never a fallback to an unchecked connection."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        smtp = open_smtp(settings.smtp_host, settings.smtp_port, security=settings.smtp_mode(),
                         timeout=settings.smtp_timeout, user=settings.smtp_user,
                         password=password, ca_file=settings.tls_ca_file)
    except TransportError as exc:
        log.error("outgoing mail stopped: %s", exc)
        connection_health.record(session, "smtp", str(exc))
        raise
    connection_health.record(session, "smtp", None)
    return smtp


CLAIM_AT_ONCE = 25  # rows (reply forwards carry scans) held in memory at once


def send_lease(settings) -> timedelta:
    """Long enough for one SMTP conversation and a batch sent at a normal pace (a few ms a
    mail); a worker that dies holding it delays its mails by about this much. A batch that
    runs slower gives its unsent rows back before the lease could lapse under a send."""
    return timedelta(seconds=settings.smtp_timeout + 10)


def send_pending(session_factory: Callable[[], Session], settings, ids: list[int]) -> dict:
    counts = {"sent": 0, "retry": 0, "bounced": 0, "released": 0}
    keys = keyring(settings)
    one_conversation = timedelta(seconds=settings.smtp_timeout)
    smtp: smtplib.SMTP | None = None
    try:
        with _one_connection(session_factory) as session:
            for start in range(0, len(ids), CLAIM_AT_ONCE):
                rows = _claim(session, ids[start:start + CLAIM_AT_ONCE], send_lease(settings))
                for i, row in enumerate(rows):
                    if utcnow() + one_conversation > row.next_attempt_at:
                        # A slow server ate the lease: a mail not sent by then could be
                        # claimed again; give the rest back, due now, attempt not counted.
                        counts["released"] += _release(session, rows[i:])
                        break
                    smtp = _deliver(session, smtp, row, settings, keys, counts)
                    session.commit()  # each outcome at once: a crash re-sends at most this one
                session.expunge_all()  # at most CLAIM_AT_ONCE rows (with scans) held at once
    finally:
        _drop(smtp)
    return counts


@contextmanager
def _one_connection(session_factory: Callable[[], Session]) -> Iterator[Session]:
    """A session kept on one connection for the whole batch. Each mail's outcome is still
    its own commit, but the connection is not handed back to the pool (and pinged again
    when taken out) between them: that was most of a commit's cost."""
    with session_factory() as session:
        bind = session.get_bind()
    if not isinstance(bind, Engine):  # already one connection (a caller's own)
        with session_factory() as session:
            yield session
        return
    with bind.connect() as connection, Session(bind=connection, expire_on_commit=False) as one:
        yield one


_MAIL = OutboundMail.__table__
_SENT = update(_MAIL).where(_MAIL.c.id == bindparam("row_id")).values(
    state=MS.SENT, sent_at=bindparam("sent_at"), last_error=None)


def _deliver(session: Session, smtp: smtplib.SMTP | None, row: OutboundMail, settings,
             keys: Keyring, counts: dict) -> smtplib.SMTP | None:
    """Send one claimed row and record its outcome on it; returns the connection to reuse."""
    recipient = keys.unseal(row.recipient_sealed)
    try:
        if smtp is None:
            smtp = _connect(session, settings)
        faults.point("outbox.before_send")
        _send(smtp, keys.unseal_bytes(row.message), verp_address(settings, row.id), recipient)
        faults.point("outbox.after_send")
        _mark_sent(session, row.id)
        counts["sent"] += 1
    except smtplib.SMTPResponseException as exc:
        smtp = _drop(smtp) if exc.smtp_code in (421,) else smtp
        _failed(session, row, exc.smtp_code, _text(exc.smtp_error), settings, counts)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        _failed(session, row, code, _text(text), settings, counts)
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        # A timeout after DATA may have delivered: retrying risks a rare
        # duplicate to the right person, which beats losing the mail.
        smtp = _drop(smtp)
        _failed(session, row, 0, repr(exc), settings, counts)
    return smtp


def _mark_sent(session: Session, row_id: int) -> None:
    """One UPDATE, built once, with no unit of work for one row's three columns. On
    PostgreSQL, outside a transaction, it runs in autocommit: one round trip instead of
    BEGIN, UPDATE and COMMIT (psycopg sends each apart), and a single statement is as
    atomic and as durable on its own. SQLite keeps its own BEGIN IMMEDIATE (gateway.db)."""
    params = {"row_id": row_id, "sent_at": utcnow()}
    connection = session.get_bind()
    if (isinstance(connection, Connection) and connection.dialect.name == "postgresql"
            and not connection.in_transaction()):
        connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            connection.execute(_SENT, params)
            connection.commit()  # ends SQLAlchemy's own transaction; nothing is sent
        except BaseException:
            connection.rollback()  # so the error raised is the database's, not a misuse
            raise
        finally:
            if not connection.invalidated:  # a lost connection is discarded, not reused
                connection.execution_options(
                    isolation_level=connection.default_isolation_level)
        return
    session.connection().execute(_SENT, params)


def _claim(session: Session, ids: list[int], lease: timedelta) -> list[OutboundMail]:
    """Claim the due rows among `ids` with a lease, in one statement and one commit: two
    tasks handed the same id (a sweep re-publishing a queued task) cannot both send it, and
    a worker that dies holding the lease leaves the row PENDING, due again after it."""
    if not ids:
        return []
    now = utcnow()
    claimed = list(session.scalars(
        update(OutboundMail)
        .where(one_of(session, OutboundMail.id, ids), OutboundMail.state == MS.PENDING,
               or_(OutboundMail.next_attempt_at.is_(None), OutboundMail.next_attempt_at <= now))
        .values(next_attempt_at=now + lease, attempts=OutboundMail.attempts + 1)
        .returning(OutboundMail.id)
        .execution_options(synchronize_session=False)))
    session.commit()
    if not claimed:
        return []
    rows = session.scalars(select(OutboundMail).where(one_of(session, OutboundMail.id, claimed))
                           .order_by(OutboundMail.id)
                           .execution_options(populate_existing=True))
    return list(rows)


def _release(session: Session, rows: list[OutboundMail]) -> int:
    for row in rows:
        row.next_attempt_at, row.attempts = utcnow(), row.attempts - 1
    session.commit()
    return len(rows)


_BARE_LF = re.compile(rb"(?<!\r)\n")
_PLAIN_ADDRESS = re.compile(r"[.!#-'*+\-/-9=?A-Z^-~]+@[A-Za-z0-9.-]+")


def _send(smtp: smtplib.SMTP, stored: bytes, sender: str, recipient: str) -> None:
    """Send the stored bytes with the To header put in front. The stored message was
    checked when it was queued; for a plain ASCII address and an ASCII message that is all
    there is to do, without parsing and serializing it again. Anything else (an
    internationalized address, 8-bit content) goes through the email package."""
    if _PLAIN_ADDRESS.fullmatch(recipient) and stored.isascii():
        # smtplib sends bytes as they are: the stored "\n" line ends become CRLF here.
        data = _BARE_LF.sub(b"\r\n", stored)
        smtp.sendmail(sender, [recipient], b"To: " + recipient.encode() + b"\r\n" + data)
        return
    msg = email.message_from_bytes(stored, policy=policy.SMTP)
    msg["To"] = recipient
    smtp.send_message(msg, from_addr=sender, to_addrs=[recipient])


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _failed(session: Session, row: OutboundMail, code: int, text: str, settings,
            counts: dict) -> None:
    row.last_error = f"{code} {text}"[:500]
    if 500 <= code < 600:
        record_bounce(session, row.id, f"{code} {text}")  # FAILED, kept for organizers
        counts["bounced"] += 1
    elif row.attempts >= settings.max_send_attempts:
        row.state = MS.FAILED  # gave up retrying: kept for organizers, never silently dropped
        counts["bounced"] += 1
    else:
        row.next_attempt_at = utcnow() + backoff(row.attempts, base=10)
        counts["retry"] += 1


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001
            smtp.close()
    return None
