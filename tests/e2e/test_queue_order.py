"""`gateway worker` serves its queues in a fixed order (workers/queues.py): with tasks
waiting in all four, it takes every intake task, then every submission, then every check,
and the writers' mail last. Kombu's default (round robin) would interleave them, so during
a burst the 'sent' notices would take turns with the letters they report on."""

from __future__ import annotations

import re

import pytest

from tests.e2e.stack import Stack
from workers.queues import QUEUES

pytestmark = [pytest.mark.e2e, pytest.mark.perf, pytest.mark.timeout(180)]

TASKS = {"intake": "workers.tasks.fetch_inbox", "submit": "workers.tasks.submit_letters",
         "letters": "workers.tasks.check_letters", "mail": "workers.tasks.send_mail"}
EACH = 3


def test_the_worker_serves_intake_then_submissions_then_checks_then_mail(make_stack, tmp_path):
    stack: Stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}")
    # One thread: it takes one task at a time, so the order received is the order served.
    stack.COMMANDS = {**Stack.COMMANDS, "worker": ["-m", "gateway.cli", "worker", "-c", "1"]}
    stack.start(processes=())
    # No letter has these ids: each task finds nothing to do and ends at once. Queued in
    # the reverse of the order they are served, and interleaved, so that neither "first in,
    # first out" nor taking the queues in turn could give the order asserted.
    tasks = [(TASKS[q], () if q == "intake" else ([10**9],)) for q in reversed(QUEUES)]
    stack.send_tasks(*tasks * EACH)
    stack.start_process("worker")

    def received() -> list[str] | None:
        names = re.findall(r"Task (workers\.tasks\.\w+)\[[^\]]+\] received",
                           stack.log("worker", tail=None))
        return names if len(names) == EACH * len(QUEUES) else None

    served = stack.wait("every task received", received, timeout=120)
    assert served == [TASKS[q] for q in QUEUES for _ in range(EACH)], served
    assert QUEUES[-1] == "mail" and QUEUES.index("submit") < QUEUES.index("letters")
