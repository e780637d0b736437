"""Every named crash point fires once (the worker child exits like SIGKILL there), and the
pipeline still ends with each message one letter, charged once, each mail to its writer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gateway
from tests.chaos.invariants import assert_invariants
from tests.chaos.stack import UNKNOWN_RECIPIENT

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

POINTS = (
    "intake.before_commit", "intake.after_commit", "intake.after_publish", "intake.after_move",
    "check.before_commit", "submit.before_call", "submit.after_call", "submit.before_record",
    "outbox.before_send", "outbox.after_send", "replies.before_commit", "replies.after_commit",
    "replies.mail_after_commit", "sweep.before_commit",
)
# The pipeline files are edited concurrently: require the points the code still has, and
# at least the core ones around intake, submission and the outbox.
IN_CODE = {m for f in Path(gateway.__file__).parent.rglob("*.py")
           for m in re.findall(r'faults\.point\("([^"]+)"\)', f.read_text())}
CORE = {"intake.before_commit", "intake.after_commit", "intake.after_move", "submit.before_call",
        "submit.after_call", "submit.before_record", "outbox.before_send", "outbox.after_send"}
LOCKS = ("gateway:lock:ingest:*", "gateway:lock:replies")


def _clear_stale_locks(stack) -> None:
    # A worker killed inside fetch_inbox / poll_replies keeps its Redis lock until it
    # expires (30 s / 120 s; see test_liveness.py); waiting is slow, so clear them.
    with stack.redis_server.client() as client:
        for pattern in LOCKS:
            for key in client.scan_iter(pattern):
                client.delete(key)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_every_crash_point_once(make_chaos_stack, database, request):
    url = request.getfixturevalue("pg_url") if database == "postgres" else None
    assert CORE <= IN_CODE, f"crash points removed from the code: {sorted(CORE - IN_CODE)}"
    points = tuple(p for p in POINTS if p in IN_CODE)
    # A crashed ingest's task is redelivered at once and can find the dead worker's lock
    # still held (the wait below clears it, but may be late): it then leaves the mail to the
    # next poll. Beat asks every 5 s here, not every 60 s, so one lost race costs seconds.
    stack = make_chaos_stack(url, extra_env={"GATEWAY_INBOX_POLL_S": "5"}).start(crash_at=points)
    stack.allow_resent_mail = True  # outbox.after_send: sent, not recorded -> sent again
    # One letter first: intake crashes before and after its commit, then after the move;
    # only the next letters, new to the database, reach the point after the publish.
    stack.post(0)
    stack.wait("the first letter's intake crashes",
               lambda: _clear_stale_locks(stack) or "intake.after_move" in stack.crashes(),
               timeout=60)
    for i in range(1, 4):
        stack.post(i)
    stack.post(4, recipient=UNKNOWN_RECIPIENT)

    def submitted() -> bool:
        _clear_stale_locks(stack)
        states = sorted(r["state"] for r in stack.letters())
        return states == ["REJECTED"] + ["SUBMITTED"] * 4
    stack.wait("four letters submitted, one rejected", submitted, timeout=150)
    stack.reply_to_all_submitted(by_email=True)

    def forwarded() -> bool:
        _clear_stale_locks(stack)
        rows = stack.query("SELECT state FROM replies")
        return sum(r["state"] == "FORWARDED" for r in rows) == 4 and len(rows) == 8 and not \
            stack.query("SELECT id FROM outbound_mail WHERE state = 'PENDING'")
    stack.wait("four replies forwarded (each came twice)", forwarded, timeout=120)

    for point in stack.crashes():
        stack.fault(f"crash at {point}")
    missing = sorted(set(points) - set(stack.crashes()))
    assert not missing, f"crash points never reached: {missing}"
    report = assert_invariants(stack)
    # The sent notice, rejection and forwards: one each per letter, the right writers.
    assert len(stack.mail_to(next(iter(stack.writers)))) >= 1
    assert report.resent <= 1
