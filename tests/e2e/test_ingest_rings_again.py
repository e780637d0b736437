"""A letter that arrives while an ingest runs is fetched as soon as that ingest ends.

The watcher rings (`fetch_inbox`) for it, but the running ingest holds the lock and its
SEARCH came before the letter: the ring is left as a request and the ingester rings again
when it is done. Before, such a letter waited for the next ring or the backstop poll (a
minute): the last letters of a letter evening, every time a burst ended mid-ingest."""

from __future__ import annotations

import re

import pytest

from tests.e2e.stack import WARM, Stack, letter

pytestmark = [pytest.mark.e2e, pytest.mark.perf, pytest.mark.timeout(240)]

EARLY = 600
RING = ("workers.tasks.fetch_inbox", ())


def test_a_ring_during_an_ingest_is_answered_when_it_ends(make_stack, tmp_path):
    # Batches of 50: the first ingest commits twelve times, so the letter below comes
    # after its SEARCH and before its end.
    stack: Stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}",
                              extra_env={"GATEWAY_IMAP_BATCH": "50"})
    # No watcher and no beat: nothing rings but this test and the gateway itself.
    stack.COMMANDS = {**Stack.COMMANDS, "worker": ["-m", "gateway.cli", "worker", "-c", "2"]}
    stack.start(processes=())
    with stack.dovecot.client("letters") as imap:
        for i in range(EARLY):
            imap.append("INBOX", letter("Петровой Марии", WARM + f"\n\nP.S. {i}"))

    def stored() -> int:
        return stack.query("SELECT count(*) AS n FROM inbound_messages")[0]["n"]

    stack.start_process("worker")
    stack.send_tasks(RING)
    stack.wait("the first ingest under way", lambda: 0 < stored() < EARLY, timeout=120)
    stack.send(letter("Петровой Марии", WARM + "\n\nP.S. пришло во время приёма почты"))
    stack.send_tasks(RING)  # the watcher's ring for it: the first ingest holds the lock

    stack.wait("the late letter stored", lambda: stored() == EARLY + 1, timeout=90)

    def ingests() -> list[int] | None:
        took = sorted(int(n) for n in re.findall(
            r"Task workers\.tasks\.fetch_inbox\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)",
            stack.log("worker", tail=None)))
        return took if len(took) >= 3 else None

    # The late ring found the lock held (0); the ring the ingester left took the letter (1).
    assert stack.wait("three ingests logged", ingests, timeout=30) == [0, 1, EARLY]
