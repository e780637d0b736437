from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.stack import Stack


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def make_stack(mailboxes, redis_url):
    stacks: list[Stack] = []
    roots: list[Path] = []

    def make(database_url: str, **kw) -> Stack:
        root = Path(tempfile.mkdtemp(prefix="gw-e2e-"))
        roots.append(root)
        stack = Stack(root, mailboxes, redis_url, database_url, **kw)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
