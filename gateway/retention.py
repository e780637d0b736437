"""Retention: what the gateway forgets, and when.

A letter that reached its end (TERMINAL: delivered, censored, returned, discarded, robot
mail) keeps its writer's traces for `retention_days` (replies still come back, organizers
still answer questions), then loses them: the raw mail, the text as written and as sent,
the subject, the writer's first name, sealed address and address hash, the rules' quoted
passages, its photos, the scans of its replies and the bytes and recipient of every mail
sent about it. What stays is what statistics need: the letter row with its state,
prisoner, provider, pages, price and dates, its event log, attempts and censor decisions.

A writer (Sender) keeps their sealed address while they are active (seen within
`writer_retention_days`) or have opted out / bounced (their Suppression must survive a key
rotation, which needs the address to recompute the hash).

Pure decisions over SQL here; `gateway purge` and the daily beat task are thin callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from gateway.models import (
    InboundMessage,
    Letter,
    LetterAttachment,
    OutboundMail,
    PostBatch,
    PostBatchLetter,
    Reply,
    ReplyPage,
    Sender,
    Suppression,
    utcnow,
)
from gateway.states import TERMINAL

# Reply states nobody acts on any more (UNMATCHED and RECEIVED still wait for a person).
_SETTLED_REPLIES = ("FORWARDED", "DUPLICATE", "KEPT")


@dataclass
class PurgeCounts:
    letters: int = 0
    raw_messages: int = 0
    photos: int = 0
    reply_pages: int = 0
    mails: int = 0
    post_batches: int = 0
    writer_addresses: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, other: PurgeCounts) -> None:
        for name in ("letters", "raw_messages", "photos", "reply_pages", "mails",
                     "post_batches", "writer_addresses"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def lines(self) -> list[str]:
        return [f"{self.letters} letters' texts, writer names and addresses",
                f"{self.raw_messages} raw e-mails", f"{self.photos} photos",
                f"{self.reply_pages} reply scan pages",
                f"{self.mails} e-mails sent to writers (bytes and sealed recipient)",
                f"{self.post_batches} printed post batches (PDF)",
                f"{self.writer_addresses} inactive writers' sealed addresses"]


def letter_cutoff(settings, now: datetime) -> datetime:
    return now - timedelta(days=settings.retention_days)


def _due_letters(cutoff: datetime):
    return select(Letter.id).where(Letter.state.in_([str(s) for s in TERMINAL]),
                                   Letter.updated_at < cutoff, Letter.purged_at.is_(None))


def _inactive_writers(settings, now: datetime):
    before = now - timedelta(days=settings.writer_retention_days)
    return select(Sender.id).where(
        Sender.address_sealed.is_not(None), Sender.last_seen_at < before,
        ~exists().where(Suppression.address_hash == Sender.address_hash))


def _settled_replies(ids: list[int], cutoff: datetime):
    return select(Reply.id).where((Reply.letter_id.in_(ids)) | (
        Reply.state.in_(_SETTLED_REPLIES) & (Reply.received_at < cutoff)))


def plan(session: Session, settings, now: datetime | None = None) -> PurgeCounts:
    """What `purge` would forget now, counted (nothing changes)."""
    now = now or utcnow()
    cutoff = letter_cutoff(settings, now)
    due = _due_letters(cutoff)
    counts = PurgeCounts()
    counts.letters = session.scalar(select(func.count()).select_from(due.subquery()))
    counts.raw_messages = session.scalar(select(func.count(InboundMessage.id)).where(
        InboundMessage.id.in_(select(Letter.inbound_id).where(Letter.id.in_(due))),
        func.length(InboundMessage.raw) > 0))
    counts.photos = session.scalar(select(func.count(LetterAttachment.id)).where(
        LetterAttachment.letter_id.in_(due)))
    counts.reply_pages = session.scalar(select(func.count(ReplyPage.id)).where(
        ReplyPage.reply_id.in_(select(Reply.id).where(
            Reply.letter_id.in_(due) | (Reply.state.in_(_SETTLED_REPLIES)
                                        & (Reply.received_at < cutoff))))))
    counts.mails = session.scalar(select(func.count(OutboundMail.id)).where(
        _mail_due(due, cutoff)))
    counts.post_batches = session.scalar(select(func.count(PostBatch.id)).where(
        _batch_due(cutoff)))
    counts.writer_addresses = session.scalar(select(func.count()).select_from(
        _inactive_writers(settings, now).subquery()))
    return counts


def _mail_due(due_letters, cutoff: datetime):
    # Mail about a purged letter, and any mail long sent (its bytes serve nobody now).
    return (OutboundMail.state != "PENDING") & (func.length(OutboundMail.message) > 0) & (
        OutboundMail.letter_id.in_(due_letters) | (OutboundMail.created_at < cutoff))


def _batch_due(cutoff: datetime):
    return (PostBatch.state == "POSTED") & (PostBatch.posted_at < cutoff) & \
        (func.length(PostBatch.pdf) > 0)


def purge(session_factory: Callable[[], Session], settings, *, now: datetime | None = None,
          progress: Callable[[PurgeCounts], None] | None = None) -> PurgeCounts:
    """Forget what retention says, a batch per transaction (a crash loses nothing: the
    next run finds what is still due). Returns what was purged."""
    now = now or utcnow()
    cutoff = letter_cutoff(settings, now)
    total = PurgeCounts()
    while True:
        with session_factory() as session:
            ids = list(session.scalars(_due_letters(cutoff).order_by(Letter.id)
                                       .limit(settings.purge_batch)))
            if not ids:
                break
            done = _purge_letters(session, ids, cutoff, now)
            session.commit()
        total.add(done)
        if progress:
            progress(total)
    with session_factory() as session:
        done = PurgeCounts()
        done.mails = _purge_mail(session, [], cutoff)
        done.reply_pages = _purge_pages(session, [], cutoff)
        done.post_batches = session.execute(update(PostBatch).where(_batch_due(cutoff)).values(
            pdf=b"")).rowcount
        done.writer_addresses = session.execute(
            update(Sender).where(Sender.id.in_(_inactive_writers(settings, now)))
            .values(address_sealed=None, token_hash=None, token_expires_at=None)
            .execution_options(synchronize_session=False)).rowcount
        session.commit()
    total.add(done)
    if progress:
        progress(total)
    _checkpoint(session_factory)
    return total


def _checkpoint(session_factory: Callable[[], Session]) -> None:
    """SQLite: fold the write-ahead log into the file and empty it, so the purged pages'
    old images do not linger there (secure_delete zeroes them in the file itself)."""
    with session_factory() as session:
        engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL: autovacuum reclaims dead rows (docs/operations.md)
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def _purge_letters(session: Session, ids: list[int], cutoff: datetime,
                   now: datetime) -> PurgeCounts:
    done = PurgeCounts(letters=len(ids))
    done.raw_messages = session.execute(
        update(InboundMessage).where(InboundMessage.id.in_(
            select(Letter.inbound_id).where(Letter.id.in_(ids)))).values(raw=b"")
        .execution_options(synchronize_session=False)).rowcount
    done.photos = session.execute(
        delete(LetterAttachment).where(LetterAttachment.letter_id.in_(ids))
        .execution_options(synchronize_session=False)).rowcount
    done.reply_pages = _purge_pages(session, ids, cutoff)
    done.mails = _purge_mail(session, ids, cutoff)
    for letter in session.scalars(select(Letter).where(Letter.id.in_(ids))):
        # The rules' quoted passages repeat the text; which rule fired stays (statistics).
        letter.findings = [{k: v for k, v in f.items() if k in ("rule", "severity")}
                           for f in letter.findings or ()] or None
        letter.sender_sealed = letter.sender_hash = letter.writer_name = None
        letter.body = letter.rendered = None
        letter.subject = ""
        letter.purged_at = now
    # A post batch's PDF prints these letters: gone with them once it is posted.
    session.execute(update(PostBatch).where(
        PostBatch.id.in_(select(PostBatchLetter.batch_id).where(
            PostBatchLetter.letter_id.in_(ids))), PostBatch.state == "POSTED").values(pdf=b"")
        .execution_options(synchronize_session=False))
    return done


def _purge_pages(session: Session, ids, cutoff: datetime) -> int:
    return session.execute(delete(ReplyPage).where(
        ReplyPage.reply_id.in_(_settled_replies(list(ids), cutoff)))
        .execution_options(synchronize_session=False)).rowcount


def _purge_mail(session: Session, ids, cutoff: datetime) -> int:
    return session.execute(
        update(OutboundMail).where(_mail_due(ids, cutoff))
        .values(message=b"", recipient_sealed="", writer_hash=None)
        .execution_options(synchronize_session=False)).rowcount
