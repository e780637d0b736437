"""The worker as `gateway worker` runs it by default (one process, a thread a task: the
shape compose and the demo use): twenty writers' letters at once, each submitted and paid
once, each writer told once about their own letter, each reply back to its own writer."""

from __future__ import annotations

import json

import pytest

from tests.e2e.stack import WARM, Stack, letter
from tests.e2e.test_anyone_fairness import ten_prisoners

pytestmark = [pytest.mark.e2e, pytest.mark.perf, pytest.mark.timeout(300)]

N = 20


def test_the_default_threaded_worker_keeps_every_letter_once_and_to_its_own_writer(
        make_stack, database_url):
    stack: Stack = make_stack(database_url, extra_env={"GATEWAY_SENDER_DAILY_LIMIT": "1000"})
    stack.COMMANDS = {**Stack.COMMANDS, "worker": ["-m", "gateway.cli", "worker"]}
    stack.start(processes=())
    stack.gateway("prisoners", "import", ten_prisoners(stack.root / "ten.csv"))
    writers = [f"w{i}@example.org" for i in range(N)]
    for i, writer in enumerate(writers):
        stack.send(letter("Любому", WARM + f"\n\nP.S. {i}", sender=f"Writer {i} <{writer}>"))
    for name in ("worker", "beat", "watch"):
        stack.start_process(name)
    rows = stack.wait("all letters SUBMITTED", lambda: (
        lambda r: r if len(r) == N and all(x["state"] == "SUBMITTED" for x in r) else None)(
        stack.query("SELECT id, provider_number, state FROM letters")), timeout=240)
    banner = stack.log("worker", tail=None)
    assert "concurrency: 8 (thread" in banner, banner[:3000]

    at_provider = stack.sim_letters()
    assert len(at_provider) == N and all(m["charges"] == 1 for m in at_provider)
    assert {m["number"] for m in at_provider} == {r["provider_number"] for r in rows}
    seen_by_prison = json.dumps(at_provider, ensure_ascii=False).lower()
    assert not any(w in seen_by_prison for w in writers)

    numbers = {}
    for writer in writers:
        (sent,) = stack.wait(f"the 'sent' notice to {writer}", lambda w=writer: stack.mail_to(w))
        body = sent.message.get_body(("plain",)).get_content()
        (numbers[writer],) = [r["provider_number"] for r in rows if r["provider_number"] in body]

    # Two prisoners answer: each scan goes to the one writer of that letter, and only there.
    for writer in writers[:2]:
        r = stack.sim("POST", f"/_sim/letters/{numbers[writer]}/reply",
                      json={"pages": 1, "by_email": False})
        assert r.status_code in (200, 201), r.text
    for writer in writers[:2]:
        stack.wait(f"the reply forwarded to {writer}", lambda w=writer: len(stack.mail_to(w)) == 2,
                   timeout=120)
    for writer in writers[2:]:
        assert len(stack.mail_to(writer)) == 1
