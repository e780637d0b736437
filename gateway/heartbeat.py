"""Long-lived processes say they are alive in SQL, so the dashboard can tell when the inbox
watcher has gone silent or no worker answers (Cursor rows `heartbeat:<who>`).

Written with Core statements on a two-column view of `cursors`, not the ORM: the inbox
watcher is a small process that only IDLEs, and loading the models for one row a half
minute cost it ~10 MB (bench/README.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, String, column, insert, table, update

_CURSORS = table("cursors", column("name", String), column("value", String),
                 column("updated_at", DateTime(timezone=True)))


def beat(conn, who: str) -> None:
    """Record `who` alive now, in `conn`'s transaction (a Session or a Connection)."""
    name = f"heartbeat:{who}"
    now = datetime.now(UTC)
    values = {"value": now.isoformat(), "updated_at": now}
    done = conn.execute(update(_CURSORS).where(_CURSORS.c.name == name).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(_CURSORS).values(name=name, **values))


class Throttled:
    """Call at will; writes at most once every `every_s` seconds, in its own transaction."""

    def __init__(self, engine: Engine, who: str, every_s: float = 30.0):
        self.engine, self.who, self.every_s = engine, who, every_s
        self._last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        try:
            with self.engine.begin() as conn:
                beat(conn, self.who)
        except Exception:  # noqa: BLE001 - a heartbeat must never stop the watcher
            pass
