"""The inbox watcher and the ingester against a real Dovecot (tests/conftest.py): IDLE rings
within 2 s, a cut connection or a frozen server does not hang it, the UID SEARCH backstop
rings without IDLE, and a UIDVALIDITY change loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.crypto import Keyring, keyring, unseal_bytes
from gateway.models import Cursor, InboundMessage, Letter
from gateway.pipeline.intake import Mailbox, exclusive_ingest, ingest
from gateway.pipeline.watcher import watch
from tests.intake.conftest import LETTERS, SECRET, mail

KEYS = Keyring(SECRET)

pytestmark = [pytest.mark.intake, pytest.mark.timeout(120)]


def inbox(dovecot, folder: str = "INBOX", timeout: float = 2.0) -> Mailbox:
    return Mailbox(dovecot.host, dovecot.port, "letters", dovecot.users["letters"], folder,
                   "Processed", timeout=timeout)


class Watcher:
    """watch() in a thread, recording when it rang and when it last showed signs of life."""

    def __init__(self, mailbox: Mailbox, **kw):
        self.rings: list[float] = []
        self.beats: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=watch, daemon=True,
            kwargs=dict(mailbox=mailbox, on_new=lambda: self.rings.append(time.monotonic()),
                        stop=self._stop.is_set, on_heartbeat=lambda: self.beats.append(time.monotonic()),
                        check_s=0.2, max_delay_s=2.0, **kw))

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, within: float = 10.0) -> None:
        self._stop.set()
        self.thread.join(within)
        assert not self.thread.is_alive(), "the watcher did not stop"

    def wait_ring(self, after: float, within: float) -> float:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            later = [t for t in self.rings if t > after]
            if later:
                return later[0] - after
            time.sleep(0.02)
        raise AssertionError(f"no ring within {within}s (rings: {len(self.rings)})")

    def wait_idle(self) -> None:
        """Heartbeats come from inside IDLE: once two arrived, IDLE is established."""
        deadline = time.monotonic() + 10
        start = len(self.beats)
        while len(self.beats) < start + 2:
            assert time.monotonic() < deadline, "the watcher never entered IDLE"
            time.sleep(0.02)


def test_a_message_appended_while_idle_rings_within_two_seconds(mailboxes):
    with Watcher(inbox(mailboxes), backstop_s=600) as w:
        w.wait_ring(0, 10)  # the ring on connect
        for letter in LETTERS[:3]:
            w.wait_idle()
            appended = time.monotonic()
            mailboxes.append("letters", mail("Петровой Марии", letter))
            assert w.wait_ring(appended, 2.0) < 2.0


def test_a_cut_connection_reconnects_and_rings(mailboxes):
    with Watcher(inbox(mailboxes), backstop_s=600) as w:
        w.wait_ring(0, 10)
        w.wait_idle()
        cut = time.monotonic()
        killed = _kill_imap_sessions(mailboxes)
        assert killed, "no imap session process found to kill"
        w.wait_ring(cut, 10)  # reconnected: rings once in case mail came meanwhile
        w.wait_idle()
        appended = time.monotonic()
        mailboxes.append("letters", mail("Петровой Марии"))
        w.wait_ring(appended, 2.0)


def test_a_frozen_server_neither_hangs_the_watcher_nor_stops_it_for_good(mailboxes):
    with Watcher(inbox(mailboxes, timeout=1.5), backstop_s=1.0) as w:
        w.wait_ring(0, 10)
        w.wait_idle()
        mailboxes.pause()
        try:
            time.sleep(6)  # several timeouts and reconnect attempts against a frozen server
            beats = len(w.beats)
            assert w.thread.is_alive()
        finally:
            mailboxes.resume()
        resumed = time.monotonic()
        w.wait_ring(resumed, 15)  # reconnected after the freeze
        w.wait_idle()
        assert len(w.beats) > beats
        appended = time.monotonic()
        mailboxes.append("letters", mail("Петровой Марии"))
        w.wait_ring(appended, 2.0)


def test_stop_is_honoured_even_while_the_server_is_frozen(mailboxes):
    w = Watcher(inbox(mailboxes, timeout=1.5), backstop_s=600).__enter__()
    w.wait_ring(0, 10)
    w.wait_idle()
    mailboxes.pause()
    try:
        w.stop(within=5.0)
    finally:
        mailboxes.resume()


def test_without_idle_the_uid_search_backstop_rings_only_for_waiting_mail(mailboxes):
    with Watcher(inbox(mailboxes), backstop_s=0.5, use_idle=False) as w:
        w.wait_ring(0, 10)
        time.sleep(2)  # empty inbox: the backstop searches and stays quiet
        assert len(w.rings) == 1
        appended = time.monotonic()
        mailboxes.append("letters", mail("Петровой Марии"))
        w.wait_ring(appended, 2.0)


# -- ingest -----------------------------------------------------------------------------------

def count(gw, model) -> int:
    with gw.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_uidvalidity_change_loses_and_duplicates_nothing(mailboxes, gw):
    folder = "Letters"
    box = inbox(mailboxes, folder)
    a, b, c = (mail("Петровой Марии", text) for text in LETTERS[:3])
    mailboxes.append("letters", a, folder)
    mailboxes.append("letters", b, folder)

    def crash(_ids):  # stored and committed, then the process dies before the move
        raise RuntimeError("crash after commit")

    with pytest.raises(RuntimeError):
        ingest(gw.sessions, box, keys=keyring(gw.settings), on_stored=crash)
    assert count(gw, Letter) == 2 and len(mailboxes.messages("letters", folder)) == 2
    with gw.sessions() as session:
        old_validity = session.scalar(select(Cursor.value))

    # The folder is recreated (new UIDVALIDITY, UIDs restart at 1): the two stored messages
    # come back, and a new one takes a UID the old numbering already used.
    with mailboxes.client("letters") as imap:
        imap.delete_folder(folder)
        imap.create_folder(folder)
    for raw in (a, b, c):
        mailboxes.append("letters", raw, folder)
    new_ids = ingest(gw.sessions, box, keys=keyring(gw.settings))
    assert len(new_ids) == 1 and count(gw, Letter) == 3 and count(gw, InboundMessage) == 3
    with gw.sessions() as session:
        assert session.scalar(select(Cursor.value)) != old_validity
        stored = session.scalar(select(InboundMessage.raw).join(
            Letter, Letter.inbound_id == InboundMessage.id).where(Letter.id == new_ids[0]))
    assert unseal_bytes(gw.settings.secret_key.get_secret_value(), stored).replace(b"\r\n", b"\n") == c.replace(b"\r\n", b"\n")
    assert mailboxes.messages("letters", folder) == []  # every copy moved out
    assert len(mailboxes.messages("letters", "Processed")) == 3

    # A stale cursor (as after a restore from backup) changes nothing either.
    with gw.sessions() as session:
        session.get(Cursor, session.scalar(select(Cursor.name))).value = "1"
        session.commit()
    mailboxes.append("letters", a, folder)
    assert ingest(gw.sessions, box, keys=keyring(gw.settings)) == [] and count(gw, Letter) == 3


def test_one_ingester_per_mailbox_in_sql_too(mailboxes, pg_url):
    from gateway.db import engine_for, session_factory
    from gateway.models import Base

    Base.metadata.create_all(engine_for(pg_url))
    sessions = session_factory(pg_url)
    box = inbox(mailboxes)
    mailboxes.append("letters", mail("Петровой Марии"))
    try:
        with exclusive_ingest(sessions, box) as first:
            assert first
            assert ingest(sessions, box, keys=KEYS) == []  # another ingester holds it: it leaves the work
            assert len(mailboxes.messages("letters")) == 1
        assert len(ingest(sessions, box, keys=KEYS)) == 1  # released: the next one does it
    finally:
        engine_for(pg_url).dispose()


def _kill_imap_sessions(dovecot) -> list[int]:
    """SIGKILL the per-connection `imap` processes: the server side of the TCP connection dies."""
    killed = []
    for pid in dovecot.pids():
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name == "imap":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # the session ended on its own meanwhile
            killed.append(pid)
    return killed
