"""`gateway beat --watch-inbox` (the embedded demo's shape): beat and the inbox watcher in one
process. With beat's own inbox poll an hour away, only the watcher inside it can bring a
new letter in."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import WARM, Stack, letter

pytestmark = [pytest.mark.e2e, pytest.mark.perf, pytest.mark.timeout(240)]

WRITER = "anna@example.org"


def test_beat_watching_the_inbox_brings_a_new_letter_in(make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}",
                       extra_env={"GATEWAY_INBOX_POLL_S": "3600"})
    stack.COMMANDS = {**Stack.COMMANDS, "beat": [*Stack.COMMANDS["beat"], "--watch-inbox"]}
    stack.start(processes=("worker", "beat"))
    stack.wait("the watcher's heartbeat", lambda: stack.query(
        "SELECT value FROM cursors WHERE name = 'heartbeat:imap-watch'"))
    time.sleep(2)  # connected and idling: the letter below arrives after the first ring
    stack.send(letter("Петровой Марии Сергеевне", WARM, sender=f"Анна Смирнова <{WRITER}>"))
    stack.wait("the letter SUBMITTED", lambda: [
        r for r in stack.letters() if r["state"] == "SUBMITTED"])
    assert len(stack.sim_letters()) == 1
