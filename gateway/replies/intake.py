"""Replies arrive two ways: the provider's API and scans e-mailed to the reply mailbox.
Both land here as Reply rows; the cursor is saved only in the same commit as the replies."""

from __future__ import annotations

import email
import hashlib
import logging
from collections.abc import Callable
from email import policy

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import faults
from gateway.mail.compose import Page
from gateway.models import Cursor, Letter, Reply, ReplyPage
from gateway.notices import queue_notice
from gateway.pipeline.intake import Mailbox, connect, ensure_folder
from gateway.providers.base import Provider
from gateway.replies.matching import find_number, match_letter

log = logging.getLogger(__name__)


def _store(session: Session, settings, *, source: str, external_id: str,
           letter_number: str | None, pages: list[tuple[str, bytes]]) -> tuple[Reply | None, list[int]]:
    if session.scalar(select(Reply.id).where(Reply.source == source,
                                             Reply.external_id == external_id)):
        return None, []
    reply = Reply(source=source, external_id=external_id, letter_number=letter_number)
    session.add(reply)
    session.flush()
    for n, (content_type, data) in enumerate(pages, start=1):
        session.add(ReplyPage(reply_id=reply.id, n=n, content_type=content_type, data=data))
    return reply, route(session, settings, reply, pages)


def route(session: Session, settings, reply: Reply, pages: list[tuple[str, bytes]]) -> list[int]:
    """Match and queue the forward. One forward per letter: the second copy of a reply that
    came both ways is recorded as DUPLICATE, never sent twice."""
    letter = match_letter(session, reply.letter_number)
    if letter is None or letter.sender_sealed is None:
        reply.state = "UNMATCHED"
        reply.note = "no letter with this number; a person decides"
        return []
    reply.letter_id = letter.id
    return forward(session, settings, reply, letter, pages)


def forward(session: Session, settings, reply: Reply, letter: Letter,
            pages: list[tuple[str, bytes]]) -> list[int]:
    attachments = tuple(
        Page(f"reply-{letter.provider_number}-{n}.{_ext(ct)}", ct, data)
        for n, (ct, data) in enumerate(pages, start=1))
    ids = queue_notice(session, settings, letter, "reply", reply_id=reply.id, pages=attachments)
    if ids:
        reply.state = "FORWARDED"
    else:
        reply.state = "DUPLICATE"
        reply.note = "this letter's reply was already forwarded"
    return ids


def _ext(content_type: str) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(
        content_type, "bin")


def poll_provider(session_factory: Callable[[], Session], provider: Provider, settings,
                  limit: int = 100) -> list[int]:
    """Fetch replies since the saved cursor. Returns outbound mail ids to send."""
    cursor_name = f"replies:{provider.name}"
    mail: list[int] = []
    while True:
        with session_factory() as session:
            row = session.get(Cursor, cursor_name)
            after = row.value if row else None
        replies, next_cursor = provider.replies(after, limit)
        if not replies:
            return mail
        with session_factory() as session:
            for remote in replies:
                pages = [provider.reply_page(p) for p in remote.pages]
                _reply, ids = _store(session, settings, source="api", external_id=remote.id,
                                     letter_number=remote.letter_number, pages=pages)
                mail += ids
            row = session.get(Cursor, cursor_name)
            if row is None:
                session.add(Cursor(name=cursor_name, value=next_cursor))
            else:
                row.value = next_cursor
            faults.point("replies.before_commit")
            session.commit()
        faults.point("replies.after_commit")
        if len(replies) < limit:
            return mail


def poll_mailbox(session_factory: Callable[[], Session], mailbox: Mailbox, settings) -> list[int]:
    """Scans e-mailed by the services to the organization's reply address."""
    mail: list[int] = []
    client = connect(mailbox)
    try:
        ensure_folder(client, mailbox.processed_folder)
        client.select_folder(mailbox.folder)
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            fetched = client.fetch(chunk, ["BODY.PEEK[]"])
            with session_factory() as session:
                for uid in chunk:
                    raw = fetched[uid][b"BODY[]"]
                    msg = email.message_from_bytes(raw, policy=policy.default)
                    body = msg.get_body(preferencelist=("plain", "html"))
                    text = body.get_content() if body is not None else ""
                    number = find_number(str(msg.get("Subject", "")), text)
                    pages = [(part.get_content_type(), part.get_payload(decode=True) or b"")
                             for part in msg.iter_attachments()
                             if part.get_content_type() in ("image/jpeg", "image/png",
                                                            "application/pdf")]
                    external_id = str(msg.get("Message-ID") or "") or \
                        hashlib.sha256(raw).hexdigest()
                    _reply, ids = _store(session, settings, source="email",
                                         external_id=external_id[:200], letter_number=number,
                                         pages=pages)
                    mail += ids
                session.commit()
            faults.point("replies.mail_after_commit")
            client.move(chunk, mailbox.processed_folder)
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001
            pass
    return mail
