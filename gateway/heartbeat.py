"""Long-lived processes say they are alive in SQL, so the dashboard can tell when the inbox
watcher has gone silent or no worker answers (Cursor rows `heartbeat:<who>`)."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from gateway.models import Cursor, utcnow


def beat(session: Session, who: str) -> None:
    name = f"heartbeat:{who}"
    row = session.get(Cursor, name)
    now = utcnow().isoformat()
    if row is None:
        session.add(Cursor(name=name, value=now))
    else:
        row.value = now


class Throttled:
    """Call at will; writes at most once every `every_s` seconds."""

    def __init__(self, session_factory, who: str, every_s: float = 30.0):
        self.session_factory, self.who, self.every_s = session_factory, who, every_s
        self._last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        try:
            with self.session_factory() as session:
                beat(session, self.who)
                session.commit()
        except Exception:  # noqa: BLE001 - a heartbeat must never stop the watcher
            pass
