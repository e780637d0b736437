"""`gateway keys rotate`: everything sealed or keyed under an old secret, redone under the
current one (GATEWAY_SECRET_KEY), while the old ones (GATEWAY_OLD_SECRET_KEYS) still read.

Resumable by construction: a row already sealed under the current key is skipped, each
batch commits on its own, and blind indexes are recomputed from the addresses themselves
(never from the stored hash), so a second run after a crash finishes the first one's work.
Raw mail and composed mail stored in clear before encryption at rest are sealed here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.crypto import Keyring
from gateway.models import (
    BirthdaySubscriber,
    InboundMessage,
    Letter,
    OutboundMail,
    Sender,
    Suppression,
    User,
)


@dataclass
class Rotation:
    counts: dict[str, int] = field(default_factory=dict)
    # Old blind index -> new, learnt from every sealed address seen.
    hashes: dict[str, str] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def rotate(session_factory: Callable[[], Session], keys: Keyring, *, batch: int = 500,
           progress: Callable[[str, int], None] | None = None) -> Rotation:
    done = Rotation()
    steps = [
        ("letters", Letter, Letter.sender_sealed.is_not(None), _letter),
        ("senders", Sender, Sender.address_sealed.is_not(None), _sender),
        ("outbound mail", OutboundMail, OutboundMail.id.is_not(None), _mail),
        ("raw mail", InboundMessage, InboundMessage.id.is_not(None), _raw),
        ("two-factor secrets", User, User.totp_sealed.is_not(None), _totp),
        ("organizer addresses", User, User.email_sealed.is_not(None), _organizer_email),
        ("birthday subscribers", BirthdaySubscriber, BirthdaySubscriber.id.is_not(None),
         _subscriber),
    ]
    for name, model, where, step in steps:
        last = 0
        while True:
            with session_factory() as session:
                rows = list(session.scalars(select(model).where(where, model.id > last)
                                            .order_by(model.id).limit(batch)))
                if not rows:
                    break
                for row in rows:
                    step(session, keys, row, done)
                session.commit()
                last = rows[-1].id
            if progress:
                progress(name, last)
    with session_factory() as session:
        _reindex(session, done)
        session.commit()
    return done


def _learn(keys: Keyring, address: str, done: Rotation) -> str:
    new = keys.address_hash(address)
    for old in keys.old_address_hashes(address):
        done.hashes[old] = new
    return new


def _reseal(keys: Keyring, token: str, done: Rotation, what: str) -> tuple[str, str]:
    address = keys.unseal(token)
    if keys.is_current(token):
        return token, address
    done.count(what)
    return keys.seal(address), address


def _letter(session: Session, keys: Keyring, row: Letter, done: Rotation) -> None:
    row.sender_sealed, address = _reseal(keys, row.sender_sealed, done, "letter addresses")
    row.sender_hash = _learn(keys, address, done)


def _sender(session: Session, keys: Keyring, row: Sender, done: Rotation) -> None:
    row.address_sealed, address = _reseal(keys, row.address_sealed, done, "writer addresses")
    new = _learn(keys, address, done)
    if row.address_hash == new:
        return
    twin = session.scalar(select(Sender).where(Sender.address_hash == new))
    if twin is not None:
        # The writer came back between the new secret and this run: one row, what both knew.
        twin.verified_at = twin.verified_at or row.verified_at
        twin.pseudonym = twin.pseudonym or row.pseudonym
        twin.first_seen_at = min(twin.first_seen_at, row.first_seen_at)
        session.delete(row)
        done.count("writers merged")
    else:
        row.address_hash = new
    done.count("writer hashes")


def _subscriber(session: Session, keys: Keyring, row: BirthdaySubscriber,
                done: Rotation) -> None:
    # Re-keyed with everyone else, or a STOP under the new key would not find them.
    row.address_sealed, address = _reseal(keys, row.address_sealed, done,
                                          "subscriber addresses")
    row.address_hash = _learn(keys, address, done)


def _mail(session: Session, keys: Keyring, row: OutboundMail, done: Rotation) -> None:
    if row.recipient_sealed:
        row.recipient_sealed, _ = _reseal(keys, row.recipient_sealed, done, "mail recipients")
    if row.message and not keys.is_current(row.message, raw=True):
        row.message = keys.seal_bytes(keys.unseal_bytes(row.message))
        done.count("mail bodies")


def _totp(session: Session, keys: Keyring, row: User, done: Rotation) -> None:
    row.totp_sealed, _ = _reseal(keys, row.totp_sealed, done, "two-factor secrets")


def _organizer_email(session: Session, keys: Keyring, row: User, done: Rotation) -> None:
    row.email_sealed, _ = _reseal(keys, row.email_sealed, done, "organizer addresses")


def _raw(session: Session, keys: Keyring, row: InboundMessage, done: Rotation) -> None:
    if not row.raw or keys.is_current(row.raw, raw=True):
        return
    data = keys.unseal_bytes(row.raw)
    row.raw, row.content_hash = keys.seal_bytes(data), keys.content_hash(data)
    done.count("raw mail")


def _reindex(session: Session, done: Rotation) -> None:
    """Indexes with no address of their own: mapped through what the addresses taught."""
    old = list(done.hashes)
    for start in range(0, len(old), 500):
        _reindex_some(session, done, old[start:start + 500])


def _reindex_some(session: Session, done: Rotation, old: list[str]) -> None:
    for mail in session.scalars(select(OutboundMail).where(OutboundMail.writer_hash.in_(old))):
        mail.writer_hash = done.hashes[mail.writer_hash]
        done.count("mail writer hashes")
    for stop in session.scalars(select(Suppression).where(
            Suppression.address_hash.in_(old))):
        new = done.hashes[stop.address_hash]
        if session.scalar(select(Suppression.id).where(Suppression.address_hash == new)):
            session.execute(delete(Suppression).where(Suppression.id == stop.id))
        else:
            stop.address_hash = new
        done.count("opt-outs and bounces")
    for sender in session.scalars(select(Sender).where(
            Sender.address_hash.in_(old), Sender.address_sealed.is_(None))):
        new = done.hashes[sender.address_hash]
        if session.scalar(select(Sender.id).where(Sender.address_hash == new)) is None:
            sender.address_hash = new
            done.count("writer hashes")
