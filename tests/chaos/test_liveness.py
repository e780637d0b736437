"""Liveness after a crash: nothing is lost (the other chaos tests prove that), but how long
does the gateway stay stuck? A worker killed inside fetch_inbox keeps the ingest lock."""

from __future__ import annotations

import pytest

from tests.chaos.invariants import assert_invariants

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


def test_intake_resumes_soon_after_a_worker_dies_inside_it(make_chaos_stack):
    # Beat asks for the inbox every 5 s, so a lock that expires in time is noticed.
    stack = make_chaos_stack(extra_env={"GATEWAY_INBOX_POLL_S": "5"}).start(
        crash_at=("intake.before_commit",))
    stack.post(0)
    stack.wait("the crash inside intake", lambda: stack.crashes(), timeout=30)
    stack.fault("crash at intake.before_commit")
    stack.post(1)
    stack.wait("both letters taken in within 45 s", lambda: len(stack.letters()) == 2,
               timeout=45)
    stack.wait("both submitted", lambda: [r["state"] for r in stack.letters()]
               == ["SUBMITTED", "SUBMITTED"] and not stack.query(
                   "SELECT id FROM outbound_mail WHERE state = 'PENDING'"), timeout=60)
    assert_invariants(stack)
