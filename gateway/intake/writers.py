"""Writers: what they ask of us by mail, and what we remember about them.

A writer is known by the HMAC of their address (crypto.address_hash), never the address.
They can, by mail alone:
- confirm their address, by answering our "confirm" notice or sending its token back;
- choose the name the prison sees: a line "Подпись: Лиса" (or "Псевдоним:", "Signature:")
  at the start or the end of a letter; the line is removed from the letter;
- stop all mail from the gateway: the subject "СТОП" / "STOP" (and "СТАРТ" / "START" to
  resume). Stopping is a Suppression row, the table every sender of mail consults.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from gateway import actions
from gateway.crypto import Keyring
from gateway.models import Letter, Sender, Suppression, utcnow
from gateway.states import LetterState, Reason

_PREFIXES = re.compile(r"^\s*((re|fwd?|fw|aw|ответ|пересл)\s*(\[\d+\])?\s*:\s*)+", re.I)
_STOP = {"стоп", "stop", "отписаться", "unsubscribe", "остановить"}
_START = {"старт", "start", "подписаться", "subscribe", "продолжить"}
_PSEUDONYM = re.compile(
    r"^\s*(подпись|подписывать|псевдоним|имя\s+для\s+письма|signature|sign\s+as|pseudonym)"
    r"\s*(:|-|–|—)\s*(?P<name>.+?)\s*$", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:[ '\-][A-Za-zА-Яа-яЁё]+){0,2}")
_TOKEN = re.compile(r"(?<!\d)(\d{4})[ \-]?(\d{4})(?!\d)")


@dataclass(frozen=True)
class Commands:
    stop: bool
    start: bool
    pseudonym: str | None
    text: str  # the letter text without a pseudonym line


def _bare_subject(subject: str) -> str:
    return re.sub(r"[\s.!:;,\-–—\"«»()\[\]]+", " ", _PREFIXES.sub("", subject or "")).strip().lower()


def read_commands(subject: str, text: str) -> Commands:
    bare = _bare_subject(subject)
    stop, start = bare in _STOP, bare in _START
    pseudonym, text = _take_pseudonym(text)
    return Commands(stop, start, pseudonym, text)


def _take_pseudonym(text: str) -> tuple[str | None, str]:
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    for i in (filled[:1] + filled[-1:]) if filled else []:
        found = _PSEUDONYM.match(lines[i])
        if not found:
            continue
        name = found.group("name").strip(" .!\"'«»")
        if len(name) > 40 or not _NAME.fullmatch(name):
            continue  # not a name: leave the line where it is
        rest = lines[:i] + lines[i + 1:]
        return name, "\n".join(rest).strip("\n")
    return None, text


def tokens_in(*texts: str) -> set[str]:
    """Every 8-digit code written as 1234 5678, 1234-5678 or 12345678."""
    return {a + b for t in texts for a, b in _TOKEN.findall(t or "")}


def new_token() -> str:
    return f"{secrets.randbelow(10 ** 8):08d}"


def show_token(token: str) -> str:
    return f"{token[:4]}-{token[4:]}"


def token_matches(sender: Sender, keys: Keyring, texts: tuple[str, ...], now: datetime) -> bool:
    """The writer's pending code is written in one of `texts`. Most writers have none
    pending: then the texts are not scanned."""
    if not sender.token_hash:
        return False
    if sender.token_expires_at is not None and sender.token_expires_at < now:
        return False
    return any(keys.code_matches(c, sender.token_hash) for c in tokens_in(*texts))


def set_token(sender: Sender, keys: Keyring, token: str, days: int) -> None:
    sender.token_hash = keys.code_digest(token)
    sender.token_expires_at = utcnow() + timedelta(days=days)


def confirm(sender: Sender) -> None:
    sender.verified_at = utcnow()
    sender.token_hash = None  # one-time
    sender.token_expires_at = None


def _locked(session: Session, hashes: list[str]):
    # FOR UPDATE, in one order: the row is this transaction's until it commits, so the
    # daily count kept in memory (count_letter) is exact when two workers check two letters
    # of one writer, and two batches lock their writers in the same order. (SQLite runs
    # BEGIN IMMEDIATE: one writer at a time anyway.)
    return session.scalars(select(Sender).where(Sender.address_hash.in_(hashes))
                           .order_by(Sender.address_hash).with_for_update()
                           .execution_options(populate_existing=True))


def senders_for(session: Session, address_hashes) -> dict[str, Sender]:
    """The writers' rows, locked, created on first sight (safe against a concurrent first
    letter): one query for known writers, two more when some are new."""
    hashes = sorted(set(address_hashes))
    if not hashes:
        return {}
    found = {s.address_hash: s for s in _locked(session, hashes)}
    new = [h for h in hashes if h not in found]
    if new:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # no portable "insert unless there": one at a time
            return found | {h: sender_for(session, h) for h in new}
        session.execute(insert(Sender).on_conflict_do_nothing(index_elements=["address_hash"]),
                        [{"address_hash": h} for h in new])
        found |= {s.address_hash: s for s in _locked(session, new)}
    return found


def sender_for(session: Session, address_hash: str) -> Sender:
    """The writer's row, locked (see _locked), created on first sight."""
    found = session.scalar(select(Sender).where(Sender.address_hash == address_hash)
                           .with_for_update().execution_options(populate_existing=True))
    if found is None:
        try:
            with session.begin_nested():
                found = Sender(address_hash=address_hash)
                session.add(found)
        except IntegrityError:
            found = session.scalar(select(Sender).where(Sender.address_hash == address_hash)
                                   .with_for_update().execution_options(populate_existing=True))
    return found


def seen(sender: Sender) -> None:
    sender.last_seen_at = utcnow()


def count_letter(sender: Sender) -> int:
    """Count one more letter today and return today's count. The row must be locked by
    this transaction (senders_for, sender_for), so the count kept here is the truth."""
    today = utcnow().date().isoformat()
    if sender.count_day == today:
        sender.letters_today += 1
    else:
        sender.count_day, sender.letters_today = today, 1
    flag_modified(sender, "count_day")  # every writer's row sets the same columns: one UPDATE
    return sender.letters_today


def is_suppressed(session: Session, address_hash: str | None) -> bool:
    if not address_hash:
        return False
    return session.scalar(select(Suppression.id).where(
        Suppression.address_hash == address_hash)) is not None


def opt_out(session: Session, address_hash: str) -> None:
    if session.scalar(select(Suppression).where(Suppression.address_hash == address_hash)):
        return
    try:
        with session.begin_nested():
            session.add(Suppression(address_hash=address_hash, reason="opted_out",
                                    note="the writer asked to stop all mail"))
    except IntegrityError:
        pass


def opt_in(session: Session, address_hash: str) -> None:
    """Only the writer's own opt-out is lifted; a bounce stays suppressed."""
    row = session.scalar(select(Suppression).where(Suppression.address_hash == address_hash,
                                                   Suppression.reason == "opted_out"))
    if row is not None:
        session.delete(row)


def confirm_known(session: Session, address_hash: str, actor: str) -> tuple[bool, list[int]]:
    """An organizer vouches for a writer they know: confirmed as if they had answered our
    code, and their letters waiting for that go back to the checks (the sweeper re-drives
    RECEIVED letters). Returns (newly confirmed, the ids released); the caller commits."""
    sender = sender_for(session, address_hash)
    fresh = sender.verified_at is None
    confirm(sender)
    released = []
    for letter in session.scalars(select(Letter).where(
            Letter.sender_hash == address_hash,
            Letter.state == LetterState.AWAITING_SENDER).order_by(Letter.id)):
        actions.back_to_checks(session, letter, actor=actor,
                               note="an organizer confirmed the writer",
                               code=Reason.WRITER_CONFIRMED_BY_ORGANIZER)
        released.append(letter.id)
    return fresh, released


def read_address_list(text: str) -> tuple[list[str], list[str]]:
    """Addresses one a line (blank lines and # comments skipped): (valid, refused lines)."""
    from gateway.mail.senders import is_valid_address

    valid, refused = [], []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().strip("<>").strip()
        if not line:
            continue
        (valid if is_valid_address(line) else refused).append(line)
    return valid, refused
