"""The local stand-in servers start, work, pause, and stop without leftovers."""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import imapclient
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, text

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.ports import free_port, wait_for_port
from gateway.devstack.postgres import PostgresUnavailable, throwaway_database
from gateway.devstack.process_group import pids_in_group
from gateway.devstack.redis_server import RedisServer
from gateway.devstack.smtp import SmtpSink

pytestmark = pytest.mark.e2e

LETTER = (
    "From: Мама <mama@example.org>\r\n"
    "To: letters@gateway.local\r\n"
    "Subject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Держись, мы с тобой.\r\n"
).encode()


def _process_states(pids: list[int]) -> set[str]:
    states = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone between open and read: ENOENT or ESRCH
            continue
        states.add(stat.rsplit(")", 1)[1].split()[0])
    return states


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot, for tests that freeze or stop it."""
    root = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
    server = DovecotServer(root, users={"letters": "pw"}).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- ports ------------------------------------------------------------------------------


def test_wait_for_port_times_out_with_the_address() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.3)
    assert time.monotonic() - started < 2


# --- Dovecot ----------------------------------------------------------------------------


def test_dovecot_append_then_read_back(mailboxes: DovecotServer) -> None:
    mailboxes.append("letters", LETTER)
    mailboxes.append("letters", b"Subject: two\r\n\r\nsecond\r\n")
    mailboxes.append("letters", b"Subject: done\r\n\r\nfiled\r\n", folder="Processed")

    assert mailboxes.messages("letters") == [LETTER, b"Subject: two\r\n\r\nsecond\r\n"]
    assert mailboxes.messages("letters", "Processed") == [b"Subject: done\r\n\r\nfiled\r\n"]
    assert mailboxes.messages("replies") == []
    assert mailboxes.messages("letters", "NoSuchFolder") == []


def test_dovecot_speaks_imap_with_idle_and_move(mailboxes: DovecotServer) -> None:
    with mailboxes.client("replies") as imap:
        caps = imap.capabilities()
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= set(caps)
        imap.create_folder("Done")
        imap.select_folder("INBOX")
        mailboxes.append("replies", LETTER)
        imap.noop()  # lets the server report the new message to this session
        uids = imap.search("ALL")
        assert len(uids) == 1
        imap.move(uids, "Done")
    assert mailboxes.messages("replies") == []
    assert mailboxes.messages("replies", "Done") == [LETTER]


def test_reset_empties_inbox_and_removes_other_folders(mailboxes: DovecotServer) -> None:
    for user in ("letters", "replies"):
        mailboxes.append(user, LETTER)
        mailboxes.append(user, LETTER, folder="Archive.2024")
    mailboxes.reset()
    for user in ("letters", "replies"):
        assert mailboxes.messages(user) == []
        assert mailboxes.folders(user) == ["INBOX"]


def test_dovecot_rejects_a_wrong_password(dovecot: DovecotServer) -> None:
    with imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=5) as imap:
        with pytest.raises(imapclient.exceptions.LoginError):
            imap.login("letters", "wrong")
    # No anvil penalty: the next good login is not delayed for later tests.
    started = time.monotonic()
    with dovecot.client("letters") as imap:
        imap.noop()
    assert time.monotonic() - started < 1


def test_dovecot_pause_freezes_and_resume_thaws(own_dovecot: DovecotServer) -> None:
    own_dovecot.pause()
    try:
        assert _process_states(own_dovecot.pids()) == {"T"}
        with pytest.raises((TimeoutError, socket.timeout, imapclient.exceptions.IMAPClientError)):
            # The kernel accepts the TCP connection; the frozen server never greets.
            imapclient.IMAPClient(own_dovecot.host, port=own_dovecot.port, ssl=False, timeout=1)
    finally:
        own_dovecot.resume()
    assert "T" not in _process_states(own_dovecot.pids())
    own_dovecot.append("letters", LETTER)
    assert own_dovecot.messages("letters") == [LETTER]


def test_dovecot_stop_leaves_no_process(own_dovecot: DovecotServer) -> None:
    pids = own_dovecot.pids()
    assert len(pids) >= 2  # master, log, config, ... (some start lazily)
    group = os.getpgid(pids[0])
    own_dovecot.stop()
    assert pids_in_group(group) == []
    assert own_dovecot.pids() == []
    assert _refused(own_dovecot.host, own_dovecot.port)


def test_dovecot_restart_keeps_mail_and_port(own_dovecot: DovecotServer) -> None:
    own_dovecot.append("letters", LETTER, folder="Kept")
    port = own_dovecot.port
    own_dovecot.stop()
    own_dovecot.start()
    assert own_dovecot.port == port
    assert own_dovecot.messages("letters", "Kept") == [LETTER]


def test_dovecot_refuses_a_port_in_use(dovecot: DovecotServer, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="already in use"):
        DovecotServer(Path(tempfile.gettempdir()) / "gw-unused", port=dovecot.port).start()


def test_dovecot_works_from_a_root_nobody_cannot_enter(tmp_path: Path) -> None:
    # pytest's tmp_path is below /tmp/pytest-of-<user>, mode 0700: as root, the mail
    # processes (user nobody) could not reach it, so the files move under /tmp.
    server = DovecotServer(tmp_path / "dovecot", users={"letters": "pw"}).start()
    try:
        server.append("letters", LETTER)
        assert server.messages("letters") == [LETTER]
        assert server.log_path.exists()
        if os.geteuid() == 0:
            assert server.data_dir != server.root
    finally:
        server.stop()
        if server.data_dir != server.root:
            shutil.rmtree(server.data_dir, ignore_errors=True)


def test_servers_die_with_the_process_that_started_them() -> None:
    # A crashed or killed pytest/demo must not leave Dovecot or Redis running.
    script = (
        "import sys, time, pathlib\n"
        "from gateway.devstack.dovecot import DovecotServer\n"
        "from gateway.devstack.redis_server import RedisServer\n"
        "d = DovecotServer(pathlib.Path(sys.argv[1])).start()\n"
        "r = RedisServer().start()\n"
        "print(*d.pids(), *r.pids(), flush=True)\n"
        "time.sleep(60)\n"
    )
    root = tempfile.mkdtemp(prefix="gw-dovecot-")
    child = subprocess.Popen(
        [sys.executable, "-c", script, root], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in child.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) >= 3
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _process_states(pids) - {"Z"}:
        time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)
    assert _process_states(pids) - {"Z"} == set()


# --- Redis ------------------------------------------------------------------------------


def test_redis_ping_set_get(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    client.set("letter:1", "received")
    assert client.get("letter:1") == b"received"
    assert client.connection_pool.connection_kwargs["port"] != 6379  # not the system Redis


def test_redis_restart_empty_loses_every_key() -> None:
    with RedisServer() as server:
        server.client().set("k", "v")
        port = server.port
        server.restart_empty()
        assert server.port == port
        assert server.client().get("k") is None
        assert server.client().ping()


def test_redis_pause_resume_and_stop() -> None:
    server = RedisServer().start()
    try:
        pids = server.pids()
        assert len(pids) == 1
        server.pause()
        with pytest.raises(redis.TimeoutError):
            frozen = redis.Redis(
                host=server.host, port=server.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
            )
            frozen.ping()
        server.resume()
        assert server.client().ping()
    finally:
        server.cleanup()
    assert pids_in_group(pids[0]) == []  # redis-server leads its own group
    assert _refused(server.host, server.port)


def test_fixtures_revive_a_frozen_or_stopped_session_server(
    dovecot: DovecotServer, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    # As a chaos test that failed before cleaning up would leave them.
    dovecot.pause()
    redis_server.stop()
    mailboxes = request.getfixturevalue("mailboxes")
    url = request.getfixturevalue("redis_url")
    assert not dovecot.paused and redis_server.running
    mailboxes.append("letters", LETTER)
    assert mailboxes.messages("letters") == [LETTER]
    assert redis.Redis.from_url(url).ping()


# --- SMTP -------------------------------------------------------------------------------


def _mail(to: str, subject: str = "Письмо") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "gateway@gateway.local"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Ответ пришёл.")
    return msg


def test_smtp_sink_keeps_what_it_receives(smtp_sink: SmtpSink) -> None:
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as smtp:
        smtp.send_message(_mail("writer@example.org", "Статус письма"))
        smtp.send_message(_mail("мама@пример.рф"))  # needs SMTPUTF8

    got = smtp_sink.wait_for(lambda m: m.message["Subject"] == "Статус письма")
    assert got.mail_from == "gateway@gateway.local"
    assert got.rcpt_tos == ["writer@example.org"]
    assert got.message.get_content().strip() == "Ответ пришёл."
    assert b"Subject:" in got.raw
    assert smtp_sink.wait_for(lambda m: m.rcpt_tos == ["мама@пример.рф"])
    assert len(smtp_sink.messages) == 2


def test_smtp_wait_for_times_out_listing_what_came(smtp_sink: SmtpSink) -> None:
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as smtp:
        smtp.send_message(_mail("a@example.org", "other"))
    with pytest.raises(TimeoutError, match="received 1"):
        smtp_sink.wait_for(lambda m: m.message["Subject"] == "never", timeout=0.2)


def test_smtp_delivers_mapped_recipients_into_dovecot(
    mailboxes: DovecotServer, tmp_path: Path
) -> None:
    outgoing = tmp_path / "outgoing"
    sink = SmtpSink(maildir=outgoing, deliver={"letters@gateway.local": (mailboxes, "letters")})
    with sink, smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
        smtp.sendmail("mama@example.org", ["letters@gateway.local"], LETTER)
        smtp.send_message(_mail("writer@example.org", "Ответ"))

    delivered = mailboxes.messages("letters")
    assert len(delivered) == 1
    assert delivered[0] == LETTER
    assert mailboxes.messages("replies") == []
    assert len(sink.messages) == 2
    # Only the outgoing message lands in the maildir.
    files = sorted(outgoing.glob("*.eml"))
    assert len(files) == 1
    assert "Ответ" in files[0].read_bytes().decode()
    assert b"Subject: =?utf-8?b?0J/RgNC40LLQtdGC?=" not in files[0].read_bytes()


def test_smtp_fail_codes_refuse_chosen_recipients(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_codes = {"Bounce@Example.org": "550 5.1.1 no such user"}
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(_mail("bounce@example.org"))
        assert refused.value.recipients["bounce@example.org"][0] == 550
        # Mixed: the good recipient still gets it.
        rejected = smtp.send_message(_mail("ok@example.org, bounce@example.org"))
        assert rejected["bounce@example.org"][0] == 550

        attempts: list[str] = []

        def flaky(rcpt: str) -> str | None:
            attempts.append(rcpt)
            return "451 4.3.0 try again later" if len(attempts) == 1 else None

        smtp_sink.fail_codes = flaky
        with pytest.raises(smtplib.SMTPRecipientsRefused) as temp:
            smtp.send_message(_mail("later@example.org"))
        assert temp.value.recipients["later@example.org"][0] == 451
        smtp.send_message(_mail("later@example.org"))

    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ok@example.org"], ["later@example.org"]]


def test_smtp_stop_frees_the_port() -> None:
    sink = SmtpSink().start()
    port = sink.port
    wait_for_port(sink.host, port, timeout=1)
    sink.stop()
    assert _refused("127.0.0.1", port)


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.postgres
def test_throwaway_database_is_usable_then_dropped(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE letters (id serial PRIMARY KEY, body text)"))
        conn.execute(text("INSERT INTO letters (body) VALUES ('Держись')"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM letters")).scalar_one() == "Держись"
        assert conn.execute(text("SELECT current_database()")).scalar_one().startswith("gw_test_")
    engine.dispose()

    # A second one, checked from the first, disappears on exit even with a session open.
    with throwaway_database() as other_url:
        other = create_engine(other_url)
        other_conn = other.connect()
        name = other_conn.execute(text("SELECT current_database()")).scalar_one()
    # The drop terminated that session: discard it now rather than leave it to the
    # garbage collector (whose error log can land mid-import, see CPython gh-106905).
    other_conn.invalidate()
    other_conn.close()
    other.dispose()
    with create_engine(pg_url).connect() as conn:
        exists = conn.execute(
            text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar_one()
    assert exists == 0


def test_throwaway_database_explains_an_unreachable_server() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(PostgresUnavailable, match="not reachable"):
        with throwaway_database(url):
            pass


def test_the_demo_restarts_a_process_that_stops_and_gives_up_on_one_that_keeps_stopping(
        tmp_path, capsys):
    from gateway.demo.stack import _supervise
    from gateway.devstack.process_group import ProcessGroup

    # "flaky" exits once (its marker file then exists) and stays up when restarted;
    # "broken" exits every time: the demo restarts flaky and stops over broken.
    marker = tmp_path / "ran-once"
    flaky = ProcessGroup([sys.executable, "-c", (
        "import os, sys, time; p = sys.argv[1]\n"
        "if not os.path.exists(p): open(p, 'w').close(); sys.exit(7)\n"
        "time.sleep(60)"), str(marker)], tmp_path / "flaky.log")
    broken = ProcessGroup([sys.executable, "-c", "import sys; sys.exit(3)"],
                          tmp_path / "broken.log")
    procs = {"flaky": flaky, "broken": broken}
    for p in procs.values():
        p.start()
    try:
        started = time.monotonic()
        _supervise(procs, tmp_path, burst=3, window_s=60)
        assert time.monotonic() - started < 30
        assert flaky.exited() is None  # restarted once and running
        out = capsys.readouterr().out
        assert "flaky stopped (exit 7); restarting it" in out
        assert "broken stopped 3 times in a minute (exit 3)" in out
    finally:
        for p in procs.values():
            p.stop()
