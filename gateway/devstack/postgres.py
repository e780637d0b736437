"""Throwaway PostgreSQL databases on an existing server (tests, demo)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

# GATEWAY_TEST_PG_ADMIN_URL lets ./scripts/test (or a developer) point at another server
# or role, e.g. a Unix-socket URL where TCP logins need a password.
DEFAULT_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class PostgresUnavailable(RuntimeError):
    """The admin URL does not reach a PostgreSQL server we may create databases on."""


@contextmanager
def throwaway_database(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """Create a fresh, uniquely named database, yield its SQLAlchemy URL (a string, with
    the password in clear so it can go into an environment variable), drop it after.

    Raises PostgresUnavailable with the reason when the server cannot be reached.
    """
    admin = make_url(admin_url)
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_engine(
        admin,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
        poolclass=NullPool,
    )
    try:
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as exc:
            raise PostgresUnavailable(
                f"PostgreSQL is not reachable at {admin.render_as_string(hide_password=True)}: "
                f"{exc.orig}. Start it (./scripts/test does, as root) or point "
                f"GATEWAY_TEST_PG_ADMIN_URL at a server."
            ) from exc
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            # FORCE (PG 13+) ends sessions a test left open, e.g. a pooled engine.
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
