"""Fifty "to anyone" letters tagged for a campaign of five, checked by two worker processes
at once: all go to the campaign's five, ten each ± 1, none to anyone outside it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.stack import WARM, Stack, letter
from tests.e2e.test_anyone_fairness import ten_prisoners

pytestmark = [pytest.mark.e2e, pytest.mark.campaigns, pytest.mark.timeout(300)]

FIVE = ("K102", "K103", "K104", "K901", "K903")


def test_fifty_anyone_letters_in_a_campaign_over_two_workers(make_stack, database_url):
    stack: Stack = make_stack(database_url, extra_env={"GATEWAY_SENDER_DAILY_LIMIT": "1000"})
    stack.COMMANDS = {**Stack.COMMANDS, "worker2": Stack.COMMANDS["worker"]}
    stack.start(processes=())
    stack.gateway("prisoners", "import", ten_prisoners(stack.root / "ten.csv"))
    stack.gateway("campaigns", "create", "vesna", "--title", "Весна",
                  *[arg for code in FIVE for arg in ("--prisoner", code)])
    for i in range(50):
        stack.send(letter("[vesna] Любому", WARM + f"\n\nP.S. {i}",
                          sender=f"Writer {i} <w{i}@example.org>"))
    for name in ("worker", "worker2", "beat", "watch"):
        stack.start_process(name)
    try:
        rows = stack.wait("all fifty letters checked", lambda: (
            lambda r: r if len(r) == 50 and all(x["state"] != "RECEIVED" for x in r) else None)(
            stack.query("SELECT l.state, l.campaign_id, p.code FROM letters l "
                        "LEFT JOIN prisoners p ON p.id = l.prisoner_id")), timeout=180)
    finally:
        stack.kill("worker2")
    counts = Counter(r["code"] for r in rows)
    assert set(counts) == set(FIVE), counts
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert len({r["campaign_id"] for r in rows}) == 1 and rows[0]["campaign_id"] is not None
