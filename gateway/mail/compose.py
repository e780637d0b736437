"""Every e-mail the gateway writes to a participant: notices and forwarded replies.

Notices are RFC 3834 auto-replies (so well-behaved robots do not answer them); the
writer's address appears only in the envelope and To header, never in the text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.models import utcnow
from gateway.templating import render_text


@dataclass(frozen=True)
class Page:
    filename: str
    content_type: str
    data: bytes


def _clean_header(value: str) -> str:
    # Anything that reaches a header is one line: no injected headers, ever.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def compose(kind: str, *, to: str | None, from_addr: str, from_name: str, subject: str,
            context: dict, in_reply_to: str | None = None, pages: tuple[Page, ...] = (),
            dedup_key: str, domain: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(display_name=_clean_header(from_name), addr_spec=from_addr)
    if to:  # the outbox adds To at send time, so stored bytes carry no address
        msg["To"] = to
    msg["Subject"] = _clean_header(subject)
    msg["Date"] = format_datetime(utcnow())
    # Deterministic Message-ID: a re-sent copy after a crash is recognisably the same mail.
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<{digest}@{domain}>" if domain else make_msgid()
    if in_reply_to:  # a msg-id has angle brackets (RFC 5322 3.6.4), or clients cannot thread
        ref = "<" + _clean_header(in_reply_to).strip("<>") + ">"
        msg["In-Reply-To"] = ref
        msg["References"] = ref
    msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Content-Language"] = "ru, en"
    msg.set_content(render_text(f"email/{kind}.txt.j2", **context), cte="quoted-printable")
    for page in pages:
        maintype, _, subtype = page.content_type.partition("/")
        msg.add_attachment(page.data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=page.filename)
    return msg
