"""The gateway's promises, checked after every chaos test (and the soak).

- lost: an inbox message that did not become exactly one letter, or a letter that is
  neither settled (terminal, SUBMITTED, or waiting for a person) nor scheduled to move
  (READY/UNKNOWN with next_attempt_at), or a reply left unrouted;
- duplicate_charges: more than one charge for one letter at the provider's ledger;
- misrouted: a gateway e-mail to anyone but its letter's writer, or a reply delivered
  twice (unless the test made SMTP outcomes ambiguous on purpose: then a re-sent copy to
  the right writer, with the same Message-ID, is the documented at-least-once cost);
- leaks: a writer's address or letter text in a provider request, a Redis key or value,
  or a process log.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field

import redis

from gateway.crypto import unseal, unseal_bytes
from gateway.states import TERMINAL, WAITING_FOR_PERSON, WAITING_FOR_WRITER
from gateway.states import LetterState as S

SECRET = "e2e-secret-0123456789abcdef0123456789"  # tests/e2e/stack.py's GATEWAY_SECRET_KEY
# Waiting for the writer (confirm the address, say which prisoner) is settled too: only
# their answer moves it, so the run cannot expect it to finish by itself.
SETTLED = TERMINAL | WAITING_FOR_PERSON | WAITING_FOR_WRITER | {S.SUBMITTED}
SCHEDULED = {S.READY, S.UNKNOWN}
_MSGID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.I | re.M)


@dataclass
class Tally:
    faults: int = 0
    lost: int = 0
    duplicate_charges: int = 0
    misrouted: int = 0
    leaks: int = 0
    tests: int = 0

    def add(self, other: Tally) -> None:
        for name in ("faults", "lost", "duplicate_charges", "misrouted", "leaks", "tests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (f"faults={self.faults} lost={self.lost} duplicate_charges="
                f"{self.duplicate_charges} misrouted={self.misrouted} leaks={self.leaks}")


@dataclass
class Report:
    tally: Tally
    problems: list[str] = field(default_factory=list)
    resent: int = 0  # same mail to the same writer again after an ambiguous SMTP outcome

    @property
    def ok(self) -> bool:
        return not self.problems


SESSION = Tally()  # accumulated across the test session; printed by conftest.py


def check(stack, *, record: bool = True) -> Report:
    """Check every invariant on a quiesced stack; adds the counts to SESSION."""
    report = Report(Tally(faults=len(stack.faults), tests=1))
    _letters(stack, report)
    _charges(stack, report)
    _mail(stack, report)
    _leaks(stack, report)
    if record:
        SESSION.add(report.tally)
    return report


def assert_invariants(stack) -> Report:
    report = check(stack)
    assert report.ok, "invariants broken:\n  " + "\n  ".join(report.problems) + \
        f"\n  ({report.tally.line()})"
    return report


# -- each inbox message is exactly one letter, settled or scheduled ------------------------
def _letters(stack, report: Report) -> None:
    rows = stack.query("SELECT m.id AS inbound_id, m.raw, l.id AS letter_id, l.state, "
                       "l.next_attempt_at FROM inbound_messages m "
                       "LEFT JOIN letters l ON l.inbound_id = m.id")
    by_msgid: dict[str, list[dict]] = {}
    for row in rows:
        raw = unseal_bytes(SECRET, bytes(row["raw"]))
        found = _MSGID.search(raw[:65536])
        if found:
            by_msgid.setdefault(found.group(1).decode(errors="replace"), []).append(row)
    for message_id in stack.sent:
        got = [r for r in by_msgid.get(message_id, []) if r["letter_id"] is not None]
        if len(got) != 1:
            report.tally.lost += 1
            report.problems.append(f"message {message_id} became {len(got)} letters")
    for row in rows:
        state, due = row["state"], row["next_attempt_at"]
        if row["letter_id"] is None:
            report.tally.lost += 1
            report.problems.append(f"inbound message {row['inbound_id']} has no letter")
        elif state not in SETTLED and not (state in SCHEDULED and due is not None):
            report.tally.lost += 1
            report.problems.append(f"letter {row['letter_id']} stuck in {state}")
    if stack.dovecot.messages("letters"):
        report.problems.append("messages left in the shared inbox")
        report.tally.lost += len(stack.dovecot.messages("letters"))
    for reply in stack.query("SELECT id, state FROM replies"):
        if reply["state"] not in ("FORWARDED", "DUPLICATE", "UNMATCHED"):
            report.tally.lost += 1
            report.problems.append(f"reply {reply['id']} left in {reply['state']}")


# -- at most one charge per letter ---------------------------------------------------------
def _charges(stack, report: Report) -> None:
    ledger = stack.sim("GET", "/_sim/ledger").json()["charges"]
    per_key = Counter(c["idempotency_key"] for c in ledger)
    at_provider = stack.sim_letters()
    per_ref = Counter(m["client_ref"] for m in at_provider)
    ours = {r["public_id"]: r for r in stack.query(
        "SELECT public_id, state, provider_number FROM letters")}
    for key, n in per_key.items():
        if n > 1:
            report.tally.duplicate_charges += n - 1
            report.problems.append(f"key {key} charged {n} times")
    for ref, n in per_ref.items():
        if n > 1:
            report.tally.duplicate_charges += n - 1
            report.problems.append(f"client_ref {ref} submitted as {n} letters")
    for m in at_provider:
        mine = ours.get(m["client_ref"])
        if mine is None:
            report.problems.append(f"provider letter {m['number']} is no letter of ours")
        elif mine["state"] in (S.SUBMITTED, S.DELIVERED, S.CENSORED) \
                and mine["provider_number"] != m["number"]:
            report.problems.append(f"letter {m['client_ref']} recorded the wrong number")


# -- each e-mail reaches its own writer, replies at most once --------------------------------
def _mail(stack, report: Report) -> None:
    outbound = stack.query(
        "SELECT o.dedup_key, o.kind, o.state, o.recipient_sealed, l.sender_sealed "
        "FROM outbound_mail o LEFT JOIN letters l ON l.id = o.letter_id")
    domain = stack.env.get("GATEWAY_GATEWAY_ADDRESS", "letters@gateway.local").partition("@")[2]
    expected: dict[str, tuple[str, str]] = {}
    for row in outbound:
        digest = hashlib.sha256(row["dedup_key"].encode()).hexdigest()[:24]
        recipient = unseal(SECRET, row["recipient_sealed"]).lower()
        expected[f"{digest}@{domain}"] = (recipient, row["kind"])
        writer = unseal(SECRET, row["sender_sealed"]).lower() if row["sender_sealed"] else None
        if row["kind"] == "reply" and recipient != writer:
            report.tally.misrouted += 1
            report.problems.append(f"reply mail {row['dedup_key']} addressed to another person")
        if row["state"] == "PENDING" and row["kind"] == "reply":
            report.problems.append(f"reply mail {row['dedup_key']} still pending")
            report.tally.lost += 1
    deliveries: Counter[str] = Counter()
    for mail in stack.sink.messages:
        found = _MSGID.search(mail.raw[:65536])
        message_id = found.group(1).decode() if found else ""
        rcpts = [r.lower() for r in mail.rcpt_tos]
        if message_id not in expected:
            if any(r in stack.writers for r in rcpts):
                report.tally.misrouted += 1
                report.problems.append(f"unexplained mail {message_id!r} to a writer")
            continue
        recipient, kind = expected[message_id]
        deliveries[message_id] += 1
        if rcpts != [recipient]:
            report.tally.misrouted += 1
            report.problems.append(f"{kind} mail {message_id} went to {rcpts}, not its writer")
        to = email.message_from_bytes(mail.raw, policy=email.policy.default)["To"]
        if str(to).lower() != recipient:
            report.tally.misrouted += 1
            report.problems.append(f"{kind} mail {message_id} is addressed To another person")
    for message_id, n in deliveries.items():
        if n > 1:
            if stack.allow_resent_mail:
                report.resent += n - 1
            else:
                report.tally.misrouted += n - 1
                report.problems.append(f"mail {message_id} delivered {n} times")


# -- no participant address or letter text where it does not belong ----------------------------
def _leaks(stack, report: Report) -> None:
    from tests.chaos.stack import BODY_MARKER
    addresses = sorted(stack.writers)
    # The provider must get the letter's text, never the writer's address; Redis and the
    # logs get neither (ids only).
    places = {
        "provider requests": (json.dumps(stack.sim_letters(), ensure_ascii=False), addresses),
        "provider ledger": (json.dumps(stack.sim("GET", "/_sim/ledger").json(),
                                       ensure_ascii=False), addresses),
        "redis": (redis_text(stack.redis_server), [*addresses, BODY_MARKER]),
    }
    for log in sorted(stack.root.glob("*.log")):
        places[f"log {log.name}"] = (log.read_text(errors="replace"), [*addresses, BODY_MARKER])
    for place, (haystack, needles) in places.items():
        haystack = haystack.lower()
        for needle in needles:
            if needle.lower() in haystack:
                report.tally.leaks += 1
                shown = needle if "@" not in needle else needle.split("@")[0] + "@…"
                report.problems.append(f"{shown!r} found in {place}")


def redis_text(server) -> str:
    """Every key and value in the Redis (every database), Celery message bodies decoded."""
    out: list[str] = []
    try:
        with server.client() as first:
            dbs = [int(name[2:]) for name in first.info("keyspace")]
        for db in dbs:
            with server.client(db) as c:
                for key in c.scan_iter(count=1000):
                    out.append(key.decode(errors="replace"))
                    out += [_decoded(v) for v in _values(c, key) if v is not None]
    except redis.ConnectionError:
        out.append("")
    return "\n".join(out).lower()


def _values(c: redis.Redis, key: bytes) -> list[bytes]:
    kind = c.type(key).decode()
    if kind == "string":
        return [c.get(key)]
    if kind == "list":
        return c.lrange(key, 0, -1)
    if kind == "hash":
        return [v for kv in c.hgetall(key).items() for v in kv]
    if kind == "set":
        return list(c.smembers(key))
    if kind == "zset":
        return [m for m, _ in c.zrange(key, 0, -1, withscores=True)]
    return []


def _decoded(value: bytes) -> str:
    text = value.decode(errors="replace")
    try:  # a kombu message: {"body": base64, "properties": {"body_encoding": "base64"}}
        message = json.loads(text)
        if isinstance(message, list) and message and isinstance(message[0], str):
            message = json.loads(message[0])  # unacked: [message, exchange, routing_key]
        if isinstance(message, dict) and isinstance(message.get("body"), str):
            text += "\n" + base64.b64decode(message["body"]).decode(errors="replace")
    except (ValueError, TypeError):
        pass
    return text
