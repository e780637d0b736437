"""Store first, then acknowledge: raw mail is committed before it leaves the inbox.

Dedup is by (mailbox, UIDVALIDITY, UID) and by a content hash, so a crash between the
commit and the move, a UIDVALIDITY change, or a message copied back, all end as one letter."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import faults
from gateway.crypto import Keyring
from gateway.db import advisory_key, one_of
from gateway.mail.imap import Mailbox, connect, ensure_folder
from gateway.models import Cursor, InboundMessage, Letter, LetterEvent
from gateway.states import LetterState, Reason

log = logging.getLogger(__name__)

MAX_FETCH_BYTES = 30 * 1024 * 1024  # bigger messages are stored truncated and quarantined


def new_public_id() -> str:
    return "L-" + secrets.token_hex(10)


def _remember_uidvalidity(session: Session, mailbox: Mailbox, uidvalidity: int) -> None:
    name = f"imap:{mailbox.label}:uidvalidity"
    row = session.get(Cursor, name)
    if row is None:
        session.add(Cursor(name=name, value=str(uidvalidity)))
    elif row.value != str(uidvalidity):
        # UIDs restarted: every message is seen anew, and the content hash keeps it one letter.
        log.warning("UIDVALIDITY of %s changed %s -> %s; rescanning", mailbox.label, row.value,
                    uidvalidity)
        row.value = str(uidvalidity)


def store_messages(session: Session, mailbox: Mailbox, uidvalidity: int,
                   fetched: dict[int, bytes], sizes: dict[int, int], *, keys: Keyring) -> list[int]:
    """Insert each new message (sealed) and its RECEIVED letter. Returns the new letter ids.

    The de-duplication hash is keyed: a plain SHA-256 would let whoever holds the database
    confirm that a message they have (or guessed) passed through here."""
    hashes = {uid: keys.content_hash(raw) for uid, raw in fetched.items()}
    seen_hashes = set(session.scalars(
        select(InboundMessage.content_hash).where(
            one_of(session, InboundMessage.content_hash, hashes.values()))))
    seen_uids = set(session.scalars(
        select(InboundMessage.uid).where(InboundMessage.mailbox == mailbox.label,
                                         InboundMessage.uidvalidity == uidvalidity,
                                         one_of(session, InboundMessage.uid, fetched))))
    inbound: list[dict] = []
    for uid, raw in fetched.items():
        digest = hashes[uid]
        if uid in seen_uids or digest in seen_hashes:
            continue
        seen_hashes.add(digest)
        inbound.append(dict(mailbox=mailbox.label, uidvalidity=uidvalidity, uid=uid,
                            content_hash=digest, size=sizes.get(uid, len(raw)),
                            raw=keys.seal_bytes(raw)))
    if not inbound:
        return []
    # Three multi-row INSERTs for the batch rather than the ORM's unit of work (which took
    # a flush a message to learn each id): nothing here needs the rows as objects, and the
    # ids come back in the order the rows were given.
    inbound_ids = list(session.scalars(
        insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True),
        inbound))
    letter_ids = list(session.scalars(
        insert(Letter).returning(Letter.id, sort_by_parameter_order=True),
        [dict(public_id=new_public_id(), inbound_id=inbound_id, state=LetterState.RECEIVED)
         for inbound_id in inbound_ids]))
    session.execute(insert(LetterEvent), [
        dict(letter_id=letter_id, from_state=None, to_state=LetterState.RECEIVED,
             note=f"taken from {mailbox.folder}", reason_code=Reason.RECEIVED)
        for letter_id in letter_ids])
    return letter_ids


def ingest(session_factory: Callable[[], Session], mailbox: Mailbox, *, keys: Keyring,
           batch: int = 200, on_stored: Callable[[list[int]], None] | None = None) -> list[int]:
    """Fetch every message in the inbox folder, store it, then move it to the processed folder.

    `on_stored` is called after each batch's commit with the new letter ids (the caller
    publishes the next step there: published only after the commit)."""
    with exclusive_ingest(session_factory, mailbox) as mine:
        if not mine:
            log.info("another ingester holds %s; leaving it the work", mailbox.label)
            return []
        return _ingest(session_factory, mailbox, keys=keys, batch=batch, on_stored=on_stored)


@contextmanager
def exclusive_ingest(session_factory: Callable[[], Session], mailbox: Mailbox) -> Iterator[bool]:
    """One ingester per mailbox, guarded in SQL too (the Celery task also holds a Redis lock).

    On PostgreSQL a session advisory lock on its own autocommit connection: it dies with the
    process, so a crashed ingester never blocks the next one. SQLite serialises writers
    anyway, and the unique keys make a concurrent store harmless, so it takes no lock."""
    with session_factory() as session:
        engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = advisory_key(f"ingest:{mailbox.label}")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def _ingest(session_factory: Callable[[], Session], mailbox: Mailbox, *, keys: Keyring, batch: int,
            on_stored: Callable[[list[int]], None] | None) -> list[int]:
    new_ids: list[int] = []
    client = connect(mailbox)
    try:
        ensure_folder(client, mailbox.processed_folder)
        info = client.select_folder(mailbox.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), batch):
            chunk = uids[start:start + batch]
            sizes = {uid: int(d[b"RFC822.SIZE"]) for uid, d in
                     client.fetch(chunk, ["RFC822.SIZE"]).items()}
            small = [u for u in chunk if sizes.get(u, 0) <= MAX_FETCH_BYTES]
            large = [u for u in chunk if u not in small]
            fetched: dict[int, bytes] = {}
            if small:
                for uid, data in client.fetch(small, ["BODY.PEEK[]"]).items():
                    fetched[uid] = data[b"BODY[]"]
            if large:  # keep the headers and a marker: visible, never silently dropped
                for uid, data in client.fetch(large, ["BODY.PEEK[HEADER]"]).items():
                    fetched[uid] = data[b"BODY[HEADER]"] + b"\r\n[message too large: " + \
                        str(sizes[uid]).encode() + b" bytes]\r\n"
            with session_factory() as session:
                _remember_uidvalidity(session, mailbox, uidvalidity)
                try:
                    ids = store_messages(session, mailbox, uidvalidity, fetched, sizes, keys=keys)
                    faults.point("intake.before_commit")
                    session.commit()
                except IntegrityError:
                    # Another ingester stored some of these first: store one by one.
                    session.rollback()
                    ids = []
                    for uid, raw in fetched.items():
                        try:
                            ids += store_messages(session, mailbox, uidvalidity, {uid: raw}, sizes,
                                                  keys=keys)
                            session.commit()
                        except IntegrityError:
                            session.rollback()
            faults.point("intake.after_commit")
            new_ids += ids
            if on_stored and ids:
                on_stored(ids)
                faults.point("intake.after_publish")
            client.move(list(fetched), mailbox.processed_folder) if client.has_capability("MOVE") \
                else _copy_expunge(client, list(fetched), mailbox.processed_folder)
            faults.point("intake.after_move")
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass
    return new_ids


def _copy_expunge(client: IMAPClient, uids: list[int], folder: str) -> None:
    client.copy(uids, folder)
    client.delete_messages(uids)
    client.uid_expunge(uids)  # exactly these UIDs, not others flagged by someone else
