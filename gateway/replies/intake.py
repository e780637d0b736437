"""Replies arrive three ways: the provider's API, scans e-mailed to the reply mailbox, and
uploads by volunteers (post replies, scans a person received). All land here as Reply rows;
the cursor moves only after every reply it covers is committed.

One reply, one forward: the same scan by API and by e-mail has the same pages hash and is
recorded as DUPLICATE of the first; a second reply to one letter cannot be forwarded twice
either (the outbox's dedup key). A reply whose letter number is missing or unknown waits in
triage (UNMATCHED) with a *suggested* letter; a person confirms. A reply for a writer who
opted out or bounced is KEPT for organizers, not lost. A reply to a letter still SUBMITTED
marks it DELIVERED."""

from __future__ import annotations

import email
import hashlib
import logging
from collections.abc import Callable
from email import policy

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import actions, faults
from gateway.mail.bounces import handle_bounce
from gateway.mail.compose import Page
from gateway.mail.imap import Mailbox, connect, ensure_folder
from gateway.models import (
    Cursor,
    Letter,
    OutboundMail,
    Postcard,
    Reply,
    ReplyPage,
    Suppression,
    utcnow,
)
from gateway.notices import queue_notice
from gateway.providers.base import Provider, RefusedPage
from gateway.replies.matching import find_number, match_letter, suggest_letter
from gateway.replies.scan_safety import UnsafeScan, reencode_scan_isolated
from gateway.states import LetterState as S
from gateway.states import ReplyState as RS

log = logging.getLogger(__name__)

SCAN_TYPES = ("image/jpeg", "image/png", "application/pdf")
# Attachments of a reply e-mail that claim to be a scan; the bytes decide what they are.
CLAIMED_SCAN = ("image/", "application/pdf", "application/octet-stream", "application/x-pdf")
MAX_REPLY_MAIL = 40 * 1024 * 1024


def pages_hash(pages: list[tuple[str, bytes]]) -> str | None:
    if not pages:
        return None
    digest = hashlib.sha256()
    for content_type, data in pages:
        digest.update(content_type.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def safe_pages(pages: list[tuple[str, bytes]], settings) -> tuple[list[tuple[str, bytes]],
                                                                  str | None]:
    """Every page re-encoded (scan_safety, in a limited child process); the reason the first
    unsafe one was refused."""
    if len(pages) > settings.scan_max_pages:  # each file costs a scan in the reader
        return [], f"{len(pages)} files (at most {settings.scan_max_pages} pages a reply)"
    safe: list[tuple[str, bytes]] = []
    refused = None
    for n, (_declared, data) in enumerate(pages, start=1):
        try:
            safe += [(p.content_type, p.data) for p in
                     reencode_scan_isolated(data, max_pages=settings.scan_max_pages)]
        except UnsafeScan as exc:
            refused = refused or f"page {n} refused: {exc.reason}"
    return safe, refused


def _store(session: Session, settings, *, source: str, external_id: str,
           letter_number: str | None, pages: list[tuple[str, bytes]],
           prisoner_id: int | None = None, facility_id: str | None = None,
           note: str | None = None, refused: str | None = None, safe: bool = False
           ) -> tuple[Reply | None, list[int]]:
    """`pages` as received (or, `safe`, as safe_pages gave them back); only their
    re-encoded copies are kept. A page that is not a safe scan (or `refused`: the adapter
    would not fetch it, or safe_pages refused it) sends the reply to triage."""
    if session.scalar(select(Reply.id).where(Reply.source == source,
                                             Reply.external_id == external_id)):
        return None, []
    unsafe = None
    if not safe:
        pages, unsafe = safe_pages(pages, settings)
    refused = refused or unsafe
    digest = pages_hash(pages)
    reply = Reply(source=source, external_id=external_id, letter_number=letter_number,
                  pages_hash=digest, note=note)
    session.add(reply)
    session.flush()
    for n, (content_type, data) in enumerate(pages, start=1):
        session.add(ReplyPage(reply_id=reply.id, n=n, content_type=content_type, data=data))
    if refused:
        log.warning("reply %s (%s) to triage: %s", reply.id, source, refused)
        _triage(session, reply, f"{refused}; nothing was forwarded, a person decides",
                prisoner_id=prisoner_id, facility_id=facility_id,
                known=match_letter(session, letter_number))
        return reply, []
    first = session.scalar(select(Reply).where(Reply.pages_hash == digest, Reply.id != reply.id)
                           .order_by(Reply.id).limit(1)) if digest else None
    if first is not None:
        reply.state, reply.letter_id = RS.DUPLICATE, first.letter_id
        reply.note = f"the same scan as reply #{first.id} (by {first.source})"
        return reply, []
    return reply, route(session, settings, reply, pages, prisoner_id=prisoner_id,
                        facility_id=facility_id)


def route(session: Session, settings, reply: Reply, pages: list[tuple[str, bytes]], *,
          prisoner_id: int | None = None, facility_id: str | None = None) -> list[int]:
    """Match by the letter number and forward; otherwise UNMATCHED with a suggestion."""
    letter = match_letter(session, reply.letter_number)
    postcard = postcard_for(session, letter)
    if postcard is not None:
        return forward_postcard(session, settings, reply, postcard, pages)
    if letter is None or letter.sender_sealed is None:
        if not reply.letter_number:
            why = "no letter number on the form"
        elif letter is not None and letter.purged_at is not None:
            # Retention did its job: who wrote is gone, and nobody can find them again.
            why = (f"letter {reply.letter_number!r} was purged on "
                   f"{letter.purged_at:%Y-%m-%d} (retention): its writer is no longer known")
        else:
            why = f"no letter with the number {reply.letter_number!r}"
        _triage(session, reply, why + "; a person decides", prisoner_id=prisoner_id,
                facility_id=facility_id)
        return []
    reply.letter_id = letter.id
    return forward(session, settings, reply, letter, pages)


def _triage(session: Session, reply: Reply, why: str, *, prisoner_id: int | None,
            facility_id: str | None, known: Letter | None = None) -> None:
    """UNMATCHED: a person decides, helped by a suggested letter."""
    reply.state, reply.note = RS.UNMATCHED, why
    if known is not None:
        reply.suggested_letter_id, reply.suggestion = known.id, "the number on the form"
        return
    suggestion = suggest_letter(session, reply.letter_number, reply.received_at or utcnow(),
                                prisoner_id=prisoner_id, facility_id=facility_id)
    if suggestion is not None:
        reply.suggested_letter_id, reply.suggestion = suggestion.letter_id, suggestion.why


def _suppressed(session: Session, letter: Letter) -> Suppression | None:
    if not letter.sender_hash:
        return None
    return session.scalar(select(Suppression).where(
        Suppression.address_hash == letter.sender_hash))


def forward(session: Session, settings, reply: Reply, letter: Letter,
            pages: list[tuple[str, bytes]]) -> list[int]:
    """Queue the forward (pages attached, the prisoner's name and the letter's date in the
    text). FORWARDED, or DUPLICATE when this letter's reply already went, or KEPT when the
    writer must not be mailed."""
    reply.letter_id = letter.id
    # A reply is the surest news of delivery: the writer learns it from the reply itself
    # (no 'delivered' notice after it), and the letter's status is no longer polled. A
    # compare-and-set: two copies of a reply routed at once move the letter once.
    if letter.state == S.SUBMITTED:
        actions.record_delivered(session, settings, letter, by_reply=True)
    stop = _suppressed(session, letter)
    if stop is not None:
        reply.state = RS.KEPT
        reply.note = (f"the writer {'opted out' if stop.reason == 'opted_out' else 'bounced'}; "
                      "kept for organizers")
        return []
    attachments = tuple(
        Page(f"reply-{letter.provider_number or letter.id}-{n}.{_ext(ct)}", ct, data)
        for n, (ct, data) in enumerate(pages, start=1))
    ids = queue_notice(session, settings, letter, "reply", reply_id=reply.id, pages=attachments)
    if ids:
        reply.state = RS.FORWARDED
    elif session.scalar(select(OutboundMail.id).where(
            OutboundMail.dedup_key == f"reply:{letter.id}")) is not None:
        reply.state = RS.DUPLICATE
        reply.note = "this letter's reply was already forwarded"
    else:
        reply.state = RS.KEPT
        reply.note = "the writer cannot be mailed now; kept for organizers"
    return ids


def postcard_for(session: Session, letter: Letter | None) -> Postcard | None:
    """The postcard a matched letter stands for: its own letter, or (the number is the
    same) one of its greetings."""
    if letter is None:
        return None
    if letter.postcard_id is not None:
        return session.get(Postcard, letter.postcard_id)
    return session.scalar(select(Postcard).where(Postcard.letter_id == letter.id))


def forward_postcard(session: Session, settings, reply: Reply, postcard: Postcard,
                     pages: list[tuple[str, bytes]]) -> list[int]:
    """The prisoner answered a postcard: the scan goes to each signer alone, one mail each
    (To: that signer only; composed per greeting, so no signer's address or name is in
    another's mail), once per greeting (the outbox's reply key). The reply is recorded
    against the postcard's letter."""
    postcard_letter = session.get(Letter, postcard.letter_id) if postcard.letter_id else None
    if postcard_letter is None:
        _triage(session, reply, f"postcard #{postcard.id} has not been sent; a person decides",
                prisoner_id=postcard.prisoner_id, facility_id=None)
        return []
    if postcard_letter.state == S.SUBMITTED:
        actions.record_delivered(session, settings, postcard_letter, by_reply=True)
    signers = list(session.scalars(select(Letter).where(
        Letter.postcard_id == postcard.id, Letter.state.in_([S.SUBMITTED, S.DELIVERED]))
        .order_by(Letter.id)))
    ids: list[int] = []
    states = []
    for greeting in signers:
        ids += forward(session, settings, reply, greeting, pages)
        states.append(reply.state)
    reply.letter_id = postcard_letter.id
    reply.state = RS.FORWARDED if RS.FORWARDED in states else \
        (RS.DUPLICATE if states and all(s == RS.DUPLICATE for s in states) else RS.KEPT)
    reply.note = (f"postcard #{postcard.id}: forwarded to {states.count(RS.FORWARDED)} of "
                  f"{len(signers)} signers")
    return ids


def confirm_match(session: Session, settings, reply_id: int, letter_id: int,
                  actor: str) -> list[int]:
    """A person confirms which letter a reply answers (the suggestion, or another). The
    caller commits. Returns outbound mail ids."""
    reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
    letter = session.get(Letter, letter_id)
    if reply is None or letter is None:
        raise LookupError("no such reply or letter")
    if reply.state != RS.UNMATCHED:
        return []
    pages = [(p.content_type, p.data) for p in session.scalars(
        select(ReplyPage).where(ReplyPage.reply_id == reply.id).order_by(ReplyPage.n))]
    postcard = postcard_for(session, letter)
    ids = forward_postcard(session, settings, reply, postcard, pages) if postcard is not None \
        else forward(session, settings, reply, letter, pages)
    reply.note = f"matched by {actor}" + (f"; {reply.note}" if reply.note else "")
    return ids


def _ext(content_type: str) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(
        content_type, "bin")


def store_upload(session: Session, settings, *, pages: list[tuple[str, bytes]],
                 letter_number: str | None, uploaded_by: str, prisoner_id: int | None = None,
                 facility_id: str | None = None) -> tuple[Reply | None, list[int]]:
    """A reply a volunteer scanned or received (the post's replies). The caller commits."""
    pages = [(ct, data) for ct, data in pages if ct in SCAN_TYPES and data]
    if not pages:
        raise ValueError("a reply needs at least one page (JPEG, PNG or PDF)")
    return _store(session, settings, source="upload", external_id=f"upload:{pages_hash(pages)}",
                  letter_number=letter_number, pages=pages, prisoner_id=prisoner_id,
                  facility_id=facility_id, note=f"uploaded by {uploaded_by}")


def poll_provider(session_factory: Callable[[], Session], provider: Provider, settings,
                  limit: int = 100,
                  on_stored: Callable[[list[int]], None] | None = None) -> list[int]:
    """Fetch replies since the saved cursor. Returns outbound mail ids to send.

    Each reply is committed as soon as its pages are in, so a flaky service still lets the
    gateway make progress one reply at a time (a batch needing every request to succeed
    at once may never arrive at a 50 % failure rate). The cursor moves only after every
    reply of the page is stored; until then the page is listed again and the replies
    already stored are skipped without fetching their pages twice. `on_stored` is called
    with the outbound mail ids of each committed reply, so forwards can leave while the
    poll goes on and are not held back if a later request fails."""
    cursor_name = f"replies:{provider.name}"
    mail: list[int] = []
    while True:
        with session_factory() as session:
            row = session.get(Cursor, cursor_name)
            after = row.value if row else None
        replies, next_cursor = provider.replies(after, limit)
        if not replies:
            return mail
        # The replies of the listing stored already (an earlier poll that failed part way):
        # one query for the page, not one a reply; _store checks again before it writes.
        with session_factory() as session:
            stored = set(session.scalars(select(Reply.external_id).where(
                Reply.source == "api", Reply.external_id.in_({r.id for r in replies}))))
        for remote in replies:
            if remote.id in stored:
                continue
            # Fetched and re-encoded outside a transaction: a slow scan holds no connection.
            pages, refused = _fetch_pages(provider, remote)
            pages, unsafe = safe_pages(pages, settings)
            with session_factory() as session:
                _reply, ids = _store(session, settings, source="api", external_id=remote.id,
                                     letter_number=remote.letter_number, pages=pages,
                                     refused=refused or unsafe, safe=True)
                faults.point("replies.before_commit")
                session.commit()
            mail += ids
            if on_stored and ids:
                on_stored(ids)
        if next_cursor is not None:  # contract: keep the old cursor when none is given
            with session_factory() as session:
                row = session.get(Cursor, cursor_name)
                if row is None:
                    session.add(Cursor(name=cursor_name, value=next_cursor))
                else:
                    row.value = next_cursor
                session.commit()
        faults.point("replies.after_commit")
        if len(replies) < limit:
            return mail


def _fetch_pages(provider: Provider, remote) -> tuple[list[tuple[str, bytes]], str | None]:
    """The reply's pages; a page the adapter refuses (another origin, too large) is left
    behind with its reason (the reply goes to triage), while a transient error propagates
    and the reply is fetched again at the next poll."""
    pages: list[tuple[str, bytes]] = []
    refused = None
    for ref in remote.pages:
        try:
            pages.append(provider.reply_page(ref))
        except RefusedPage as exc:
            refused = refused or f"page {ref.n} refused: {exc}"
    return pages, refused


def read_reply_mail(raw: bytes) -> tuple[str | None, list[tuple[str, bytes]], str]:
    """(letter number as written, scan pages, external id) from a service's reply e-mail."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
    except (LookupError, ValueError):  # a broken charset or transfer encoding
        text = ""
    number = find_number(str(msg.get("Subject", "") or ""), text)
    pages = [(part.get_content_type(), part.get_payload(decode=True) or b"")
             for part in msg.iter_attachments()
             if part.get_content_type().startswith(CLAIMED_SCAN)]
    external_id = str(msg.get("Message-ID", "") or "").strip() or hashlib.sha256(raw).hexdigest()
    return number, [p for p in pages if p[1]], external_id[:200]


def poll_mailbox(session_factory: Callable[[], Session], mailbox: Mailbox, settings) -> list[int]:
    """Scans e-mailed by the services to the organization's reply address, and bounces of
    our own mail to its VERP addresses."""
    mail: list[int] = []
    client = connect(mailbox)
    try:
        ensure_folder(client, mailbox.processed_folder)
        client.select_folder(mailbox.folder)
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            sizes = client.fetch(chunk, ["RFC822.SIZE"])
            wanted = [u for u in chunk if sizes[u][b"RFC822.SIZE"] <= MAX_REPLY_MAIL]
            fetched = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
            with session_factory() as session:
                for uid in chunk:
                    if uid not in fetched:
                        log.warning("reply mail uid %s is too large; left for a person", uid)
                        continue
                    raw = fetched[uid][b"BODY[]"]
                    if handle_bounce(session, raw, settings) is not None:
                        continue
                    try:
                        number, pages, external_id = read_reply_mail(raw)
                    except Exception as exc:  # noqa: BLE001 - hostile mail must not stop the rest
                        log.warning("unreadable reply mail uid %s: %r", uid, exc)
                        number, pages, external_id = None, [], hashlib.sha256(raw).hexdigest()
                    _reply, ids = _store(session, settings, source="email",
                                         external_id=external_id, letter_number=number,
                                         pages=pages)
                    mail += ids
                session.commit()
            faults.point("replies.mail_after_commit")
            client.move([u for u in chunk if u in fetched], mailbox.processed_folder)
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001
            pass
    return mail
