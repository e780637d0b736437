"""Shared fixtures: real local servers from gateway.devstack (no mocks).

Keep this file to server fixtures; feature-specific fixtures belong in the
conftest.py of their test folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.postgres import PostgresUnavailable, throwaway_database
from gateway.devstack.redis_server import RedisServer
from gateway.devstack.smtp import SmtpSink


def _revive(server: DovecotServer | RedisServer) -> None:
    # A chaos test that failed mid-way may have left the session server frozen or down.
    if server.paused:
        server.resume()
    if not server.running:
        server.stop()
        server.start()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the session, users "letters" and "replies" (password "secret").

    Tests that read or write mail should use `mailboxes`, which empties them first.
    """
    # Not under pytest's tmp dir: /tmp/pytest-of-root is 0700, so as root (mail
    # processes run as `nobody`) DovecotServer would move its files to another dir.
    root = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
    server = DovecotServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mailboxes(dovecot: DovecotServer) -> DovecotServer:
    """The session Dovecot with every user's INBOX empty and no other folders."""
    _revive(dovecot)
    dovecot.reset()
    return dovecot


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Own redis-server for the session (not the system one on 6379); see `redis_url`."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session redis-server, flushed before the test."""
    _revive(redis_server)
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh SMTP sink for one test."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test.

    No server: the test fails under CI=true (CI must exercise PostgreSQL) and is
    skipped elsewhere. GATEWAY_TEST_PG_ADMIN_URL overrides the admin URL
    (see gateway/devstack/postgres.py).
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_database())
        except PostgresUnavailable as exc:
            unavailable = str(exc)
        else:
            unavailable = ""
        # Outside the except block, so the report is the message, not a chained traceback.
        if unavailable:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true but {unavailable}", pytrace=False)
            pytest.skip(unavailable)
        yield url
