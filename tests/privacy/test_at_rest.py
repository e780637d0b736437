"""Nothing readable at rest: sealed raw mail, masked error texts, retention, keys.

On a real SQLite database made by the migrations, through the real intake and checks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from gateway.config import Settings
from gateway.crypto import Keyring, keyring
from gateway.lifecycle import move
from gateway.mail.bounces import record_bounce
from gateway.migrate import upgrade
from gateway.models import (
    AuditEntry,
    Cursor,
    InboundMessage,
    Letter,
    LetterAttachment,
    LetterEvent,
    OutboundMail,
    Sender,
    Suppression,
    User,
    utcnow,
)
from gateway.retention import plan, purge
from gateway.rotation import rotate
from gateway.states import LetterState as S
from tests.intake.conftest import GATEWAY, LETTERS, Gateway, mail, seeded_gateway

pytestmark = [pytest.mark.privacy, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
ANNA = "Анна Тестова <Anna.Testova@example.org>"
OLD = "the-old-secret-of-this-test-0123456789abcdef"
NEW = "the-new-secret-of-this-test-fedcba9876543210"


def settings_for(url: str, secret: str = OLD, old: str = "", **kw) -> Settings:
    return Settings(database_url=url, secret_key=secret, old_secret_keys=old,
                    gateway_address=GATEWAY, org_reply_email="replies@gw.example",
                    broker_url="redis://127.0.0.1:1/0", confirm_senders=False, **kw)


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/gateway.db"
    upgrade(url)
    return url


@pytest.fixture
def gw(url) -> Gateway:
    return seeded_gateway(settings_for(url))


def with_photo(subject: str, body: str, sender: str = ANNA) -> bytes:
    import email
    from email import policy
    msg = email.message_from_bytes(mail(subject, body, sender=sender), policy=policy.default)
    import io

    from PIL import Image
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(jpeg, "JPEG")
    msg.add_attachment(jpeg.getvalue(), maintype="image", subtype="jpeg", filename="cat.jpg")
    return bytes(msg)


def test_raw_mail_is_sealed_and_its_hash_keyed(gw):
    raw = mail("Петровой Марии", LETTERS[0], sender=ANNA)
    [letter_id] = gw.send(raw)
    gw.send(mail("Кому-то незнакомому", LETTERS[1], sender=ANNA))  # returned: a notice
    keys = keyring(gw.settings)
    with gw.sessions() as session:
        stored = session.scalar(select(InboundMessage))
        letter = session.get(Letter, letter_id)
        mails = list(session.scalars(select(OutboundMail)))
    assert letter.state == S.READY  # parsed from the sealed bytes
    assert b"Anna.Testova" not in stored.raw and b"Subject" not in stored.raw
    assert keys.unseal_bytes(stored.raw) == raw
    tampered = stored.raw[:-1] + bytes([stored.raw[-1] ^ 1])
    with pytest.raises(ValueError, match="altered"):  # authenticated: no silent change
        keys.unseal_bytes(tampered)
    # A message whose ciphertext was altered is one letter for a person, not a crash.
    with gw.sessions() as session:
        [second] = gw.receive(mail("Иванову Ивану", LETTERS[2], sender=ANNA))
        inbound = session.scalar(select(InboundMessage).join(
            Letter, Letter.inbound_id == InboundMessage.id).where(Letter.id == second))
        inbound.raw = inbound.raw[:-1] + bytes([inbound.raw[-1] ^ 1])
        session.commit()
    gw.check([second])
    with gw.sessions() as session:
        broken = session.get(Letter, second)
        assert broken.state == S.QUARANTINED and "decrypted" in broken.reason
    import hashlib
    assert stored.content_hash != hashlib.sha256(raw).hexdigest()  # a guess confirms nothing
    assert stored.content_hash == keys.content_hash(raw)
    assert mails and all(b"Subject" not in m.message for m in mails)
    # The same message copied back into the inbox is still one letter.
    assert gw.receive(raw) == []


def test_addresses_in_errors_notes_and_alerts_are_masked(gw):
    [letter_id] = gw.send(mail("Кому-то незнакомому", LETTERS[0], sender=ANNA))
    with gw.sessions() as session:
        row = session.scalar(select(OutboundMail).where(OutboundMail.letter_id == letter_id))
        diagnostic = "smtp; 550 5.1.1 <Anna.Testova@example.org>: Recipient address rejected"
        assert record_bounce(session, row.id, diagnostic)
        letter = session.get(Letter, letter_id)
        session.add(LetterEvent(letter_id=letter.id, from_state=letter.state,
                                to_state=letter.state, actor="moderator",
                                note="the writer (anna.testova@example.org) asked by phone"))
        session.add(AuditEntry(username="moderator", action="note",
                               detail="called ANNA.TESTOVA@EXAMPLE.ORG"))
        session.commit()
    with gw.sessions() as session:
        texts = [session.get(OutboundMail, row.id).last_error,
                 *session.scalars(select(Suppression.note)),
                 *session.scalars(select(Cursor.value).where(Cursor.name.like("alert:%"))),
                 *session.scalars(select(LetterEvent.note)),
                 *session.scalars(select(AuditEntry.detail))]
    joined = "\n".join(t for t in texts if t)
    assert "550 5.1.1" in joined and "A***@e***.org" in joined  # still useful to a person
    assert "testova" not in joined.lower()


def test_purge_forgets_writers_and_keeps_the_statistics(gw, url):
    [done_id] = gw.send(with_photo("Петровой Марии", LETTERS[0]))
    [open_id] = gw.send(mail("Иванову Ивану", LETTERS[1], sender=ANNA))
    [returned_id] = gw.send(mail("Кому-то незнакомому", LETTERS[2], sender=ANNA))
    with gw.sessions() as session:
        letter = session.get(Letter, done_id)
        move(session, letter, S.DISCARDED, actor="moderator", note="test")
        session.execute(update(Letter).where(Letter.id.in_([done_id, returned_id]))
                        .values(updated_at=utcnow() - timedelta(days=61)))
        session.execute(update(OutboundMail).values(state="SENT", sent_at=utcnow()))
        session.commit()
        events_before = session.scalar(select(func.count(LetterEvent.id)))
        assert session.scalar(select(func.count(LetterAttachment.id))) == 1
    settings = gw.settings
    with gw.sessions() as session:
        counts = plan(session, settings)
    assert (counts.letters, counts.raw_messages, counts.photos) == (2, 2, 1)
    assert counts.mails >= 1 and counts.writer_addresses == 0  # Anna is active

    # The command line: a dry run counts and changes nothing; then the purge.
    env = {**os.environ, "GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET_KEY": OLD,
           "PYTHONPATH": str(ROOT)}
    dry = subprocess.run([sys.executable, "-m", "gateway.cli", "purge", "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert dry.returncode == 0, dry.stderr
    assert "2 letters' texts" in dry.stdout and "1 photos" in dry.stdout
    with gw.sessions() as session:
        assert session.get(Letter, done_id).body  # untouched by the dry run
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "purge"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "purged" in run.stdout and "2 letters' texts" in run.stdout

    with gw.sessions() as session:
        gone, kept = session.get(Letter, done_id), session.get(Letter, open_id)
        assert (gone.body, gone.rendered, gone.sender_sealed, gone.sender_hash,
                gone.writer_name, gone.subject) == (None, None, None, None, None, "")
        assert gone.purged_at is not None and gone.state == S.DISCARDED and gone.photos == 1
        assert session.get(InboundMessage, gone.inbound_id).raw == b""
        assert session.scalar(select(func.count(LetterAttachment.id))) == 0
        assert all(m.message == b"" and m.recipient_sealed == "" for m in session.scalars(
            select(OutboundMail).where(OutboundMail.letter_id == returned_id)))
        assert session.scalar(select(func.count(LetterEvent.id))) >= events_before
        assert kept.body and kept.sender_sealed  # not ended: untouched
        [anna] = session.scalars(select(Sender))
        assert keyring(settings).unseal(anna.address_sealed).lower() == "anna.testova@example.org"
    # Nothing left to do: the next daily run changes nothing.
    assert purge(gw.sessions, settings).letters == 0

    # A reply that comes after the purge waits for a person, who is told why it cannot go.
    from gateway.models import Reply
    from gateway.replies.intake import route
    with gw.sessions() as session:
        session.get(Letter, done_id).provider_number = "FP-2026-000777"
        reply = Reply(source="api", external_id="late-1", letter_number="FP-2026-000777")
        session.add(reply)
        session.flush()
        assert route(session, settings, reply, []) == []
        assert reply.state == "UNMATCHED" and "was purged on" in reply.note
        session.rollback()

    # A writer gone quiet longer than writer_retention_days loses the sealed address too.
    with gw.sessions() as session:
        session.execute(update(Sender).values(last_seen_at=utcnow() - timedelta(days=400)))
        session.commit()
    assert purge(gw.sessions, settings).writer_addresses == 1
    with gw.sessions() as session:
        assert session.scalar(select(Sender.address_sealed)) is None


def test_rotation_re_seals_and_re_indexes_everything_and_resumes(gw, url):
    gw.send(mail("Петровой Марии", LETTERS[0], sender=ANNA))
    gw.send(mail("СТОП", "", sender="Борис <boris@example.org>"))  # an opt-out
    gw.send(mail("Кому-то незнакомому", LETTERS[1], sender="Вера <vera@example.org>"))
    with gw.sessions() as session:  # an installation upgraded from clear raw mail
        first = session.scalar(select(InboundMessage).order_by(InboundMessage.id))
        first.raw = keyring(gw.settings).unseal_bytes(first.raw)
        # An organizer's two-factor secret, sealed under the old secret.
        session.add(User(username="olga", password_hash="x", role="admin",
                         totp_sealed=keyring(gw.settings).seal("JBSWY3DPEHPK3PXP"),
                         email_sealed=keyring(gw.settings).seal("olga@org.example")))
        session.commit()

    new_settings = settings_for(url, secret=NEW, old=OLD)
    keys = keyring(new_settings)

    class Crash(Exception):
        pass

    def crash_after_one_batch(what: str, last: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        rotate(gw.sessions, keys, batch=1, progress=crash_after_one_batch)
    # The rest by the command line, as an operator would after the crash.
    env = {**os.environ, "GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET_KEY": NEW,
           "GATEWAY_OLD_SECRET_KEYS": OLD, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "rotate", "--batch", "2"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "raw mail: up to id" in done.stdout and "rotated" in done.stdout
    assert "raw mail" in done.stdout.rpartition("rotated")[2]  # the clear one sealed now

    only_new = Keyring(NEW)  # the old secret removed: everything must still read
    with gw.sessions() as session:
        for letter in session.scalars(select(Letter).where(Letter.sender_sealed.is_not(None))):
            address = only_new.unseal(letter.sender_sealed)
            assert letter.sender_hash == only_new.address_hash(address)
        for inbound in session.scalars(select(InboundMessage)):
            assert only_new.is_current(inbound.raw, raw=True)
            assert inbound.content_hash == only_new.content_hash(only_new.unseal_bytes(inbound.raw))
        for sent in session.scalars(select(OutboundMail)):
            only_new.unseal(sent.recipient_sealed)
            assert only_new.is_current(sent.message, raw=True)
        senders = {s.address_hash for s in session.scalars(select(Sender))}
        assert only_new.address_hash("boris@example.org") in senders
        [stop] = session.scalars(select(Suppression))
        assert stop.address_hash == only_new.address_hash("boris@example.org")
        olga = session.scalar(select(User).where(User.username == "olga"))
        assert only_new.unseal(olga.totp_sealed) == "JBSWY3DPEHPK3PXP"
        assert only_new.unseal(olga.email_sealed) == "olga@org.example"
    # Run again: nothing left to re-seal.
    again = rotate(gw.sessions, keys)
    assert not {k: v for k, v in again.counts.items() if k in (
        "raw mail", "letter addresses", "writer addresses", "mail recipients", "mail bodies",
        "two-factor secrets", "organizer addresses")}


PLACEHOLDERS = [
    Settings.model_fields["secret_key"].default.get_secret_value(),
    next(line.partition("=")[2] for line in (ROOT / ".env.example").read_text().splitlines()
         if line.startswith("GATEWAY_SECRET_KEY=")),
    "<64 random characters>",  # gateway/web/README.md
    "short-but-random-Zq8",
]


@pytest.mark.parametrize("secret", PLACEHOLDERS)
def test_a_weak_or_shipped_secret_is_refused_outside_the_demo(secret):
    with pytest.raises(ValueError, match="GATEWAY_SECRET_KEY"):
        Settings(database_url="postgresql+psycopg://x@localhost/db", secret_key=secret)
    # The embedded demo / development database keeps working with it.
    assert Settings(database_url="sqlite:///x.db", secret_key=secret)


def test_every_purpose_has_its_own_key():
    from gateway.crypto import PURPOSES, derive
    keys = {derive(NEW, p) for p in PURPOSES}
    assert len(keys) == len(PURPOSES) and all(len(k) == 32 for k in keys)
    assert Keyring(NEW).session_key != Keyring(OLD).session_key
    assert Keyring(NEW, (OLD,)).session_fallbacks == [Keyring(OLD).session_key]


def test_the_upgrade_masks_addresses_stored_before_masking(tmp_path):
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(url, "d5a1e9c3b7f2")  # the schema before masking at storage
    engine = create_engine(url)
    said = "550 5.1.1 <anna.testova@example.org>: no such user"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO outbound_mail (dedup_key, kind, state, message, "
                          "recipient_sealed, attempts, last_error, created_at) VALUES "
                          "('k', 'sent', 'FAILED', x'00', 'x', 1, :e, '2026-01-01')"), {"e": said})
        conn.execute(text("INSERT INTO suppressions (address_hash, reason, note, at) VALUES "
                          "('h', 'bounced', :e, '2026-01-01')"), {"e": said})
        conn.execute(text("INSERT INTO cursors (name, value, updated_at) VALUES "
                          "('alert:mail:bounce:1', :e, '2026-01-01')"), {"e": said})
    upgrade(url)
    with engine.connect() as conn:
        stored = [conn.execute(text(q)).scalar() for q in (
            "SELECT last_error FROM outbound_mail", "SELECT note FROM suppressions",
            "SELECT value FROM cursors WHERE name LIKE 'alert:%'")]
    engine.dispose()
    assert stored == ["550 5.1.1 <a***@e***.org>: no such user"] * 3
