"""The inbox watcher: a long-lived process that IDLEs on the shared inbox and rings the
bell (`on_new`) when mail arrives. It never ingests itself, so it can never lose a letter:
the ingest task does that, guarded by a lock. A periodic backstop rings anyway, and every
(re)connect rings once, in case something arrived while we were away."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from imapclient.exceptions import IMAPClientError

from gateway.pipeline.intake import Mailbox, connect

log = logging.getLogger(__name__)

IDLE_RENEW_S = 9 * 60  # well within RFC 2177's 29 minutes, and NAT timeouts


def watch(mailbox: Mailbox, on_new: Callable[[], None], *, backstop_s: float = 60.0,
          check_s: float = 5.0, stop: Callable[[], bool] = lambda: False,
          on_heartbeat: Callable[[], None] | None = None) -> None:
    delay = 1.0
    while not stop():
        try:
            client = connect(mailbox)
            client.select_folder(mailbox.folder, readonly=True)
            delay = 1.0
            on_new()
            last_ring = time.monotonic()
            while not stop():
                client.idle()
                started = time.monotonic()
                rang = False
                while not stop() and time.monotonic() - started < IDLE_RENEW_S:
                    responses = client.idle_check(timeout=check_s)
                    if on_heartbeat:
                        on_heartbeat()
                    if any(r[1] in (b"EXISTS", b"RECENT") for r in responses if len(r) > 1):
                        rang = True
                        break
                    if time.monotonic() - last_ring >= backstop_s:
                        rang = True
                        break
                client.idle_done()
                if rang:
                    on_new()
                    last_ring = time.monotonic()
            client.logout()
        except (TimeoutError, OSError, IMAPClientError) as exc:
            log.warning("inbox watcher lost %s (%s); reconnecting in %.0fs", mailbox.label, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
