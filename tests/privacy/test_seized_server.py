"""The seized server: after a run on real servers, nothing on the gateway's side names a
writer, except the readable copies docs/threat-model.md lists (until the purge: none).

Six writers, each with an address, a display name and the IP their mail came from (in its
Received header), go through what the gateway does today: a letter submitted by API and
its reply coming back by API and by e-mail; a letter returned (unknown prisoner); a letter
held by the rules and discarded by a person; a writer whose address the SMTP server
refuses with an answer naming it, and a DSN naming another; a desk letter and a post
letter; every first-time writer confirming their address. Then every table of the
database (as text and as bytes), every file under the gateway's data folder, every Redis
key and value and every log line are searched for each writer's traces. The provider
(simulator), the mail host (Dovecot) and the writers' own mailboxes (the SMTP sink) are
the other side of the wire, not the seized server.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from PIL import Image
from sqlalchemy import inspect, text

from gateway.config import Settings
from gateway.crypto import is_sealed
from gateway.db import session_factory
from gateway.human import desk
from gateway.lifecycle import move
from gateway.mail.bounces import verp_address
from gateway.models import Letter, utcnow
from gateway.states import LetterState as S
from tests.e2e.conftest import database_url, make_stack  # noqa: F401 - the fixtures
from tests.e2e.stack import GATEWAY, REPLIES, Stack
from tests.intake.conftest import LETTERS

pytestmark = [pytest.mark.privacy, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]


class Writer:
    def __init__(self, name: str, address: str, ip: str) -> None:
        self.name, self.address, self.ip = name, address, ip

    @property
    def surname(self) -> str:
        return self.name.split()[-1]

    def traces(self) -> list[str]:
        """What would identify them: every spelling of the address a system might keep,
        their full display name and surname, and the IP their mail came from."""
        local, _, domain = self.address.partition("@")
        idna = f"{local}@{domain.encode('idna').decode()}"
        forms = {self.address, self.address.lower(), self.address.upper(), idna,
                 quote(self.address), quote(self.address, safe=""), self.name, self.surname,
                 self.surname.lower(), self.surname.upper(), self.ip}
        return sorted(forms)

    def letter(self, subject: str, body: str, photo: bool = False, **headers: str) -> bytes:
        msg = EmailMessage()
        msg["Received"] = (f"from [{self.ip}] (helo=writer-pc) by mx.gateway.local with "
                           f"ESMTPSA id {make_msgid()[1:9]}; {formatdate()}")
        msg["From"] = f"{self.name} <{self.address}>"
        msg["To"] = GATEWAY
        msg["Subject"] = subject
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain=self.address.partition("@")[2])
        for name, value in headers.items():
            msg[name.replace("_", "-")] = value
        msg.set_content(body)
        if photo:
            jpeg = io.BytesIO()
            Image.new("RGB", (320, 240), (90, 140, 200)).save(jpeg, "JPEG")
            msg.add_attachment(jpeg.getvalue(), maintype="image", subtype="jpeg",
                               filename="sea.jpg")
        return bytes(msg)


ANNA = Writer("Анна Тестова", "Anna.Testova@example.org", "203.0.113.11")  # API, replies
BORIS = Writer("Борис Держимордов", "boris.derzhimordov@example.net", "203.0.113.22")  # returned
VERA = Writer("Вера Скрытная", "vera.skrytnaya@example.com", "198.51.100.33")  # held
DMITRY = Writer("Дмитрий Отказов", "dmitry.otkazov@example.org", "198.51.100.44")  # SMTP 550
ELENA = Writer("Елена Почтова", "elena.pochtova@example.org", "192.0.2.55")  # post
FEDOR = Writer("Фёдор Столов", "fedor.stolov@example.org", "192.0.2.66")  # desk
WRITERS = [ANNA, BORIS, VERA, DMITRY, ELENA, FEDOR]

EXTRA_PRISONERS = ("code,last_name,first_name,middle_name,birth_year,region,facility_name,"
                   "facility_id,provider\n"
                   "K201,Орлов,Сергей,Иванович,1980,Москва,СИЗО-1 «Матросская тишина»,"
                   "77-sizo-1,desk\n"
                   "K202,Белова,Ольга,Петровна,1985,Москва,СИЗО-2 «Бутырка»,77-sizo-2,post\n")


def readable_copies() -> set[tuple[str, str]]:
    """(table, column) pairs docs/threat-model.md lists as readable before the purge."""
    doc = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    section = doc.split("## Readable copies", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)\.(\w+)` \| ([^|]+) \|", section, re.MULTILINE)
    assert rows and all(why.strip() for _, _, why in rows), "each copy needs its reason"
    return {(table, column) for table, column, _ in rows}


# -- what a seized server holds --------------------------------------------------------

def _is_ciphertext(value: bytes) -> bool:
    return is_sealed(value)


def database_values(stack: Stack) -> list[tuple[str, str, bytes]]:
    """(table, column, value as bytes) for every non-null cell of every table."""
    out = []
    with stack.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    data = value if isinstance(value, bytes) else (
                        json.dumps(value, ensure_ascii=False, default=str)
                        if isinstance(value, dict | list) else str(value)).encode()
                    out.append((table, column, data))
    return out


def data_files(stack: Stack) -> list[tuple[str, bytes]]:
    """Every file the gateway's processes wrote: the database files (SQLite), the beat
    schedule, the logs. The simulator's database is the provider's, not ours."""
    files = []
    roots = [stack.root]
    if stack.database_url.startswith("sqlite"):
        roots.append(Path(stack.database_url.split("///", 1)[1]).parent)
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("simulator.db"):
                files.append((str(path), path.read_bytes()))
    return files


def redis_values(stack: Stack) -> list[tuple[str, bytes]]:
    client = redis.Redis.from_url(stack.redis_url)
    out = []
    for db in range(16):
        c = client if db == 0 else redis.Redis.from_url(stack.redis_url, db=db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            if kind == "string":
                values = [c.get(key)]
            elif kind == "list":
                values = c.lrange(key, 0, -1)
            elif kind == "hash":
                values = [k + b"=" + v for k, v in c.hgetall(key).items()]
            elif kind == "set":
                values = list(c.smembers(key))
            elif kind == "zset":
                values = [m for m, _ in c.zrange(key, 0, -1, withscores=True)]
            else:
                values = [c.dump(key) or b""]
            for value in values:
                out.append((f"redis db{db} {key!r}", key + b" " + value))
                out.extend((f"redis db{db} {key!r} (decoded body)", body)
                           for body in _celery_bodies(value))
    return out


def _celery_bodies(value: bytes) -> list[bytes]:
    # Celery messages carry their arguments base64-encoded inside JSON.
    try:
        message = json.loads(value)
        return [base64.b64decode(message["body"])] if isinstance(message, dict) and \
            message.get("properties", {}).get("body_encoding") == "base64" else []
    except (ValueError, KeyError, TypeError):
        return []


def hits(places: list[tuple[str, bytes]], writers: list[Writer]) -> list[str]:
    found = []
    for where, data in places:
        if _is_ciphertext(data):
            continue
        for writer in writers:
            for trace in writer.traces():
                if trace.encode() in data:
                    found.append(f"{trace!r} in {where}")
    return found


# -- the run ---------------------------------------------------------------------------

def _notice(stack: Stack, writer: Writer, subject_part: str, timeout: float = 60):
    return stack.wait(f"{subject_part!r} to {writer.address}", lambda: [
        m for m in stack.mail_to(writer.address.lower())
        if subject_part in str(m.message["Subject"])], timeout=timeout)[-1]


def _confirm(stack: Stack, writer: Writer) -> None:
    notice = _notice(stack, writer, "Подтвердите адрес")
    stack.send(writer.letter("Re: " + str(notice.message["Subject"]), "Да, это я.",
                             In_Reply_To=notice.message["Message-ID"]))


def _letter_of(stack: Stack, writer: Writer, state: str, timeout: float = 90) -> int:
    keys = Settings(**_settings_kwargs(stack))
    from gateway.crypto import keyring

    def find():
        rows = stack.query("SELECT id, sender_sealed FROM letters WHERE state = :s", s=state)
        return [r["id"] for r in rows if r["sender_sealed"] and
                keyring(keys).unseal(r["sender_sealed"]).lower() == writer.address.lower()]
    return stack.wait(f"{writer.address}'s letter {state}", find, timeout=timeout)[0]


def _settings_kwargs(stack: Stack) -> dict:
    return {"database_url": stack.database_url,
            "secret_key": stack.env["GATEWAY_SECRET_KEY"],
            "org_reply_email": REPLIES, "gateway_address": GATEWAY,
            "broker_url": stack.redis_url}


def _by_hand(stack: Stack, letter_id: int, target: S, note: str) -> None:
    sessions = session_factory(stack.database_url)
    with sessions() as session:
        move(session, session.get(Letter, letter_id), target, actor="organizer", note=note)
        session.commit()


def _dsn(stack: Stack, outbound_id: int, writer: Writer) -> bytes:
    """An RFC 3464 report, as a receiving server sends it to our VERP address."""
    verp = verp_address(Settings(**_settings_kwargs(stack)), outbound_id)
    return f"""From: MAILER-DAEMON@mx.example.net
To: {verp}
Subject: Undelivered Mail Returned to Sender
Date: {formatdate()}
Message-ID: {make_msgid(domain="mx.example.net")}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Your message could not be delivered to <{writer.address}>: mailbox unavailable.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {writer.address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{writer.address}>: Recipient address rejected: User unknown

--b1--
""".replace("\n", "\r\n").encode()


def test_a_seized_server_names_no_writer(make_stack, database_url, tmp_path):  # noqa: F811
    stack = make_stack(database_url, extra_env={
        "GATEWAY_CONFIRM_SENDERS": "true", "GATEWAY_RECEIVED_NOTICE_AFTER_S": "3600"})
    refusal = (f"550 5.1.1 <{DMITRY.address}>: Recipient address rejected: "
               f"User unknown in virtual mailbox table")
    stack.sink.fail_codes = lambda rcpt: refusal if rcpt.lower() == DMITRY.address.lower() \
        else None
    stack.start()
    extra = tmp_path / "extra-prisoners.csv"
    extra.write_text(EXTRA_PRISONERS, encoding="utf-8")
    stack.gateway("prisoners", "import", str(extra))
    stack.gateway("providers", "sync")

    # Every writer writes; first-timers confirm their address by answering.
    stack.send(ANNA.letter("Петровой Марии Сергеевне", LETTERS[0], photo=True))
    stack.send(BORIS.letter("Неизвестному Адресату", LETTERS[1]))
    stack.send(VERA.letter("Иванову Ивану", LETTERS[2] + "\n\nПозвоните мне: +7 916 555-12-34"
                           f"\n\n{VERA.name}"))
    stack.send(DMITRY.letter("Ковалёву Петру", LETTERS[3]))
    stack.send(ELENA.letter("Беловой Ольге", LETTERS[4]))
    stack.send(FEDOR.letter("Орлову Сергею", LETTERS[5]))
    for writer in (ANNA, VERA, ELENA, FEDOR):
        _confirm(stack, writer)
    _notice(stack, BORIS, "Кому ваше письмо")  # returned: asked who it is for

    # Anna's letter goes by API; the prisoner answers by API and by e-mail.
    number = stack.wait("Anna's letter submitted", lambda: [
        r["provider_number"] for r in stack.letters() if r["state"] == "SUBMITTED"
        and r["provider_number"]], timeout=90)[0]
    stack.sim("POST", f"/_sim/letters/{number}/reply", json={"pages": 1, "by_email": True})
    _notice(stack, ANNA, "Ответ на ваше письмо")

    # Vera's letter: held by the rules (a phone number), discarded by a person.
    vera = _letter_of(stack, VERA, "HELD")
    _by_hand(stack, vera, S.DISCARDED, "the writer asked us by phone to drop it")
    # Dmitry's confirmation is refused by his server, naming him: a bounce.
    stack.wait("Dmitry's address refused", lambda: stack.query(
        "SELECT id FROM suppressions WHERE reason = 'bounced'"), timeout=90)
    dmitry = _letter_of(stack, DMITRY, "AWAITING_SENDER")
    _by_hand(stack, dmitry, S.DISCARDED, "the writer's address does not exist")
    # A DSN naming Boris comes back for his notice, to its VERP address.
    [boris_mail] = stack.query("SELECT id FROM outbound_mail WHERE kind = 'unknown_recipient'")
    stack.dovecot.append("replies", _dsn(stack, boris_mail["id"], BORIS))
    stack.wait("Boris's DSN recorded", lambda: len(stack.query(
        "SELECT id FROM suppressions WHERE reason = 'bounced'")) == 2, timeout=60)

    # Desk: an organizer types Fedor's letter into the service's site.
    fedor = _letter_of(stack, FEDOR, "DESK")
    sessions = session_factory(stack.database_url)
    with sessions() as session:
        desk.record(session, Settings(**_settings_kwargs(stack)), fedor, "olga",
                    "FP-2026-777001", None, lease=False)
        session.commit()
    # Post: Elena's letter printed in a batch and posted.
    _letter_of(stack, ELENA, "DESK")
    printout = tmp_path / "printed" / "batch.pdf"  # the volunteer's, not the server's
    printout.parent.mkdir()
    stack.gateway("post", "batch", "77-sizo-2", "--out", str(printout))
    [batch] = stack.query("SELECT id FROM post_batches")
    stack.gateway("post", "posted", str(batch["id"]))
    for writer in (ELENA, FEDOR, ANNA):
        _notice(stack, writer, "Письмо отправлено")
    stack.wait("every notice sent or failed", lambda: not stack.query(
        "SELECT id FROM outbound_mail WHERE state = 'PENDING'"), timeout=60)
    time.sleep(2)  # let beat and the watcher write what they write

    # Before the purge: readable copies only where the threat model says, with its reason.
    listed = readable_copies()
    cells = database_values(stack)
    found_cells = {(table, column) for table, column, data in cells
                   if hits([("", data)], WRITERS)}
    assert found_cells <= listed, f"unlisted readable copies: {found_cells - listed}"
    assert ("letters", "body") in found_cells  # Vera signed with her name: the test sees it
    outside = [(f"file {p}", d) for p, d in data_files(stack) if "gateway.db" not in p] \
        + redis_values(stack)
    assert hits(outside, WRITERS) == []

    # Every letter ends; retention passes; the daily purge runs (as `gateway purge`).
    for state_ in ("SUBMITTED",):
        for row in stack.query("SELECT id FROM letters WHERE state = :s", s=state_):
            _by_hand(stack, row["id"], S.DELIVERED, "delivered (test)")
    with stack.engine.begin() as conn:
        old = utcnow() - timedelta(days=400)
        conn.execute(text("UPDATE letters SET updated_at = :t"), {"t": old})
        conn.execute(text("UPDATE outbound_mail SET created_at = :t"), {"t": old})
        conn.execute(text("UPDATE replies SET received_at = :t"), {"t": old})
        conn.execute(text("UPDATE post_batches SET posted_at = :t"), {"t": old})
        conn.execute(text("UPDATE senders SET last_seen_at = :t"), {"t": old})
    dry = stack.gateway("purge", "--dry-run")
    assert "would purge" in dry and "10 letters' texts" in dry and "1 photos" in dry
    out = stack.gateway("purge")
    assert "purged" in out

    # After: not one trace of any writer on the seized server, ciphertext aside (the only
    # sealed addresses left are the opted-out and bounced writers', kept for rotation).
    cells = database_values(stack)
    assert hits([(f"{t}.{c}", d) for t, c, d in cells], WRITERS) == []
    assert hits(data_files(stack), WRITERS) == []
    assert hits(redis_values(stack), WRITERS) == []
    assert hits([("gateway purge output", (dry + out).encode())], WRITERS) == []
    # Statistics survive: every letter, its state and its events.
    states = sorted(r["state"] for r in stack.letters())
    assert states.count("DELIVERED") >= 3 and "DISCARDED" in states and "REJECTED" in states
    assert stack.query("SELECT count(*) AS n FROM letter_events")[0]["n"] > 20
