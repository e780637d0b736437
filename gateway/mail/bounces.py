"""VERP return paths and bounces for the mail we send writers.

Every outbound message leaves with its own envelope sender,
`<reply-mailbox local part>+bounce-<outbound id>-<tag>@<domain>`, the tag an HMAC so nobody
can forge a bounce for a row. A DSN coming back to that address names the outbound row
without parsing the bounced copy; a 5xx at send time records the same way. A bounced
address becomes a Suppression (never mailed again); replies for that writer are kept for
organizers instead of forwarded."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import Message

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.crypto import keyring
from gateway.models import Cursor, Letter, OutboundMail, Suppression, utcnow

_VERP = re.compile(r"\+bounce-(\d+)-([0-9a-f]{12})@", re.IGNORECASE)


def verp_address(settings, outbound_id: int) -> str:
    local, _, domain = settings.org_reply_email.partition("@")
    return f"{local}+bounce-{outbound_id}-{keyring(settings).verp_tag(outbound_id)}@{domain}"


def outbound_id_from(address: str, settings) -> int | None:
    """The outbound row a VERP address names, or None when it is not one of ours."""
    m = _VERP.search(address or "")
    if not m:
        return None
    outbound_id, tag = int(m.group(1)), m.group(2).lower()
    return outbound_id if keyring(settings).verp_tag_matches(outbound_id, tag) else None


# Permanent failures that say the mailbox itself is bad: suppress the address. Other 5xx
# (policy, content) fail the one message and alert, but keep the writer.
_BAD_MAILBOX = re.compile(r"\b5\.1\.[0-9]\b|\b5\.2\.1\b|^55[03]\b")


def record_bounce(session: Session, outbound_id: int, diagnostic: str) -> bool:
    """Mark the message bounced and, for a bad mailbox, suppress its writer. True when
    the row was found. Idempotent: a second DSN for the same row changes nothing new."""
    row = session.get(OutboundMail, outbound_id)
    if row is None:
        return False
    row.state = "FAILED"
    row.last_error = f"bounced: {diagnostic}"[:500]
    row.next_attempt_at = None
    writer = row.writer_hash
    if writer is None and row.letter_id is not None:
        writer = session.scalar(select(Letter.sender_hash).where(Letter.id == row.letter_id))
    if writer and _BAD_MAILBOX.search(diagnostic.strip()):
        if session.scalar(select(Suppression.id).where(Suppression.address_hash == writer)) is None:
            try:
                with session.begin_nested():
                    session.add(Suppression(address_hash=writer, reason="bounced",
                                            note=diagnostic[:300]))
            except IntegrityError:
                pass
    session.add(Cursor(name=f"alert:mail:bounce:{outbound_id}:{utcnow().isoformat()}",
                       value=f"outbound #{outbound_id} ({row.kind}) bounced: {diagnostic}"[:200]))
    return True


def _delivery_status(msg: Message) -> str:
    """'5.1.1 user unknown' from a DSN's message/delivery-status part, or ''."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            status = str(block.get("Status", "") or "").strip()
            diag = str(block.get("Diagnostic-Code", "") or "").strip()
            if status:
                return f"{status} {diag}".strip()
    return ""


def handle_bounce(session: Session, raw: bytes, settings) -> int | None:
    """If this message is a bounce to one of our VERP addresses, record it and return the
    outbound id; otherwise None (it is not a bounce of ours)."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    for header in ("Delivered-To", "X-Original-To", "To", "Envelope-To"):
        for value in msg.get_all(header, []) or []:
            outbound_id = outbound_id_from(str(value), settings)
            if outbound_id is not None:
                diagnostic = _delivery_status(msg) or "5.0.0 bounce without a delivery status"
                return outbound_id if record_bounce(session, outbound_id, diagnostic) else None
    return None
