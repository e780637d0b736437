"""Fixtures for the chaos suite, and its one summary line at the end of the session:

    faults=N lost=0 duplicate_charges=0 misrouted=0 leaks=0

with the counts accumulated over every chaos test that checked the invariants."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.chaos import invariants
from tests.chaos.stack import ChaosStack


@pytest.fixture
def make_chaos_stack(mailboxes, redis_server):
    stacks: list[ChaosStack] = []

    def make(database_url: str | None = None, **kw) -> ChaosStack:
        if redis_server.pids() == []:  # a test left it stopped
            redis_server.start()
        with redis_server.client() as client:
            client.flushall()
        root = Path(tempfile.mkdtemp(prefix="gw-chaos-"))
        stack = ChaosStack(root, mailboxes, redis_server,
                           database_url or f"sqlite:///{root / 'gateway.db'}", **kw)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
        shutil.rmtree(stack.root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if invariants.SESSION.tests:
        terminalreporter.write_sep(
            "=", f"chaos invariants over {invariants.SESSION.tests} stack runs")
        terminalreporter.write_line(invariants.SESSION.line())
