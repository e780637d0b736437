"""Beat with the inbox watcher inside it, one process instead of two (`gateway beat
--watch-inbox`): for the embedded demo and a small server, where a second Python process
with Celery, SQLAlchemy and imapclient loaded costs ~50 MB and buys nothing. Production
compose keeps them apart (each restarts on its own).

The watcher is a daemon thread started when beat starts. It only rings the bell (sends
`fetch_inbox` by name); if it ever stops, beat's own `fetch-inbox` poll still ingests, so
at worst mail waits `inbox_poll_s` longer, and the thread is restarted."""

from __future__ import annotations

import logging
import threading
import time

from celery import signals

from workers.sender import app, send

log = logging.getLogger(__name__)
RESTART_S = 10.0


def _watch_forever() -> None:
    from gateway.config import get_settings
    from gateway.db import engine_for
    from gateway.heartbeat import Throttled
    from gateway.mail.imap import Mailbox
    from gateway.pipeline.watcher import watch

    settings = get_settings()
    while True:
        try:
            # The same heartbeat name as `gateway imap-watch`: the dashboard's health page
            # sees the watcher whichever process runs it.
            watch(Mailbox.inbox(settings), on_new=lambda: send("workers.tasks.fetch_inbox"),
                  on_heartbeat=Throttled(engine_for(settings.database_url), "imap-watch"))
        except Exception:  # noqa: BLE001 - beat must outlive its watcher
            log.exception("the inbox watcher inside beat stopped; restarting in %.0f s",
                          RESTART_S)
        time.sleep(RESTART_S)


@signals.beat_init.connect
def _start_watcher(**_kw) -> None:
    threading.Thread(target=_watch_forever, name="imap-watch", daemon=True).start()


__all__ = ["app"]
