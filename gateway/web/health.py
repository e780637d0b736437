"""Are the gateway's own processes alive? Read, never asked: the inbox watcher and the
worker's sweep leave heartbeats in SQL (Cursor rows `heartbeat:<who>`, see
gateway/heartbeat.py), and the Celery queues' depths are Redis list lengths."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Cursor
from gateway.web.labels import N_

log = logging.getLogger(__name__)

QUEUES = ("letters", "submit", "intake", "mail")
# The watcher beats at most every 30 s, the sweep every few seconds: 3 minutes of silence
# is a process that is gone or stuck, not a slow moment.
STALE_AFTER = timedelta(minutes=3)
# N_: the words are translated where the overview shows them (gateway/web/overview.py).
PROCESSES = (("imap-watch", N_("Inbox watcher"), N_("new letters are not being picked up")),
             ("worker", N_("Worker"), N_("no worker has run the sweep; letters are not moving")))


@dataclass(frozen=True)
class Heartbeat:
    who: str
    label: str
    consequence: str
    last: datetime | None  # None: never reported

    def silent(self, now: datetime) -> bool:
        return self.last is None or now - self.last > STALE_AFTER


def heartbeats(session: Session) -> tuple[Heartbeat, ...]:
    names = [f"heartbeat:{who}" for who, _, _ in PROCESSES]
    seen: dict[str, datetime] = {}
    for row in session.scalars(select(Cursor).where(Cursor.name.in_(names))):
        try:
            seen[row.name.split(":", 1)[1]] = datetime.fromisoformat(row.value)
        except ValueError:
            continue  # unreadable: treated as never reported
    return tuple(Heartbeat(who, label, why, seen.get(who)) for who, label, why in PROCESSES)


def queue_depths(broker_url: str) -> dict[str, int] | None:
    """LLEN of each Celery queue, or None when Redis does not answer (quickly)."""
    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=0.5,
                                      socket_connect_timeout=0.5)
        try:
            # One round trip for every queue (a refresh of the overview asks each time).
            pipe = client.pipeline(transaction=False)
            for q in QUEUES:
                pipe.llen(q)
            return {q: int(n) for q, n in zip(QUEUES, pipe.execute(), strict=True)}
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        log.warning("broker unreachable: %s", exc)
        return None
