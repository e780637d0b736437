"""Send queued e-mails to writers. SMTP 4xx and timeouts retry from the database with
backoff; 5xx is recorded as a bounce (and a bad mailbox suppresses the writer). Each message
leaves with its own VERP envelope sender, so a later DSN names its outbound row. The To
header is added here from the sealed address."""

from __future__ import annotations

import email
import logging
import smtplib
from collections.abc import Callable
from datetime import timedelta
from email import policy

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from gateway import faults
from gateway.crypto import unseal
from gateway.models import OutboundMail, utcnow
from gateway.pipeline.submission import backoff
from gateway.replies.bounces import record_bounce, verp_address

log = logging.getLogger(__name__)


def _connect(settings) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
    if settings.smtp_starttls:
        smtp.starttls()
    if settings.smtp_user:
        smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
    return smtp


def send_lease(settings) -> timedelta:
    """Long enough for one SMTP conversation; a worker that dies holding it delays that
    one mail by about this much."""
    return timedelta(seconds=settings.smtp_timeout + 10)


def send_pending(session_factory: Callable[[], Session], settings, ids: list[int]) -> dict:
    counts = {"sent": 0, "retry": 0, "bounced": 0}
    secret = settings.secret_key.get_secret_value()
    lease = send_lease(settings)
    smtp: smtplib.SMTP | None = None
    try:
        for mail_id in ids:
            with session_factory() as session:
                # Claim the row with a lease before sending: two tasks handed the same id
                # (a sweep re-publishing a queued task) cannot both send it. A worker that
                # dies holding the lease leaves the row PENDING; it is due again after it.
                now = utcnow()
                claimed = session.execute(
                    update(OutboundMail)
                    .where(OutboundMail.id == mail_id, OutboundMail.state == "PENDING",
                           or_(OutboundMail.next_attempt_at.is_(None),
                               OutboundMail.next_attempt_at <= now))
                    .values(next_attempt_at=now + lease, attempts=OutboundMail.attempts + 1)
                    .execution_options(synchronize_session=False)).rowcount
                session.commit()
                if claimed != 1:
                    continue
                row = session.get(OutboundMail, mail_id, populate_existing=True)
                msg = email.message_from_bytes(row.message, policy=policy.SMTP)
                recipient = unseal(secret, row.recipient_sealed)
                msg["To"] = recipient
                try:
                    if smtp is None:
                        smtp = _connect(settings)
                    faults.point("outbox.before_send")
                    smtp.send_message(msg, from_addr=verp_address(settings, row.id),
                                      to_addrs=[recipient])
                    faults.point("outbox.after_send")
                    row.state, row.sent_at, row.last_error = "SENT", utcnow(), None
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
                session.commit()
    finally:
        _drop(smtp)
    return counts


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _failed(session: Session, row: OutboundMail, code: int, text: str, settings,
            counts: dict) -> None:
    row.last_error = f"{code} {text}"[:500]
    if 500 <= code < 600:
        record_bounce(session, row.id, f"{code} {text}")  # FAILED, kept for organizers
        counts["bounced"] += 1
    elif row.attempts >= settings.max_send_attempts:
        row.state = "FAILED"  # gave up retrying: kept for organizers, never silently dropped
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
