"""The inbox watcher: a long-lived process that IDLEs on the shared inbox and rings the
bell (`on_new`) when mail arrives. It never ingests itself, so it can never lose a letter:
the ingest task does that, guarded by a lock. Every (re)connect rings once, in case mail
arrived while we were away, and a periodic `UID SEARCH` backstop rings when the inbox holds
anything at all (ingest empties it), so a missed IDLE notification costs one backstop period.

Nothing here can hang: every socket operation has the mailbox's timeout, IDLE is left and
re-entered well within RFC 2177's 29 minutes, leaving IDLE and the backstop search are the
liveness checks (a frozen server fails them within the timeout), and reconnection backs off
exponentially with jitter. A server without IDLE is polled with the backstop alone.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.mail.imap import Mailbox, connect
from gateway.mail.transport import TransportError

log = logging.getLogger(__name__)

IDLE_RENEW_S = 9 * 60  # well within RFC 2177's 29 minutes, and NAT timeouts


def watch(mailbox: Mailbox, on_new: Callable[[], None], *, backstop_s: float = 60.0,
          check_s: float = 1.0, renew_s: float = IDLE_RENEW_S,
          stop: Callable[[], bool] = lambda: False,
          on_heartbeat: Callable[[], None] | None = None,
          use_idle: bool = True, max_delay_s: float = 60.0) -> None:
    """Run until `stop()` is true (checked at least every `check_s` seconds, or after one
    socket timeout when the server is frozen)."""
    delay = 1.0
    uidvalidity: int | None = None
    while not stop():
        client: IMAPClient | None = None
        try:
            client = connect(mailbox)
            info = client.select_folder(mailbox.folder, readonly=True)
            current = int(info[b"UIDVALIDITY"])
            if uidvalidity is not None and current != uidvalidity:
                # The ingester sees it too and rescans; the content hash keeps it one letter.
                log.warning("UIDVALIDITY of %s changed %s -> %s", mailbox.label, uidvalidity,
                            current)
            uidvalidity = current
            delay = 1.0
            _ring(on_new)
            if use_idle and client.has_capability("IDLE"):
                _idle_loop(client, on_new, backstop_s, check_s, renew_s, stop, on_heartbeat)
            else:
                _poll_loop(client, on_new, backstop_s, check_s, stop, on_heartbeat)
            client.logout()
        except (OSError, IMAPClientError) as exc:  # timeouts are OSErrors; aborts IMAPClientErrors
            # A refusal on security grounds (TransportError) is an error, not a blip.
            (log.error if isinstance(exc, TransportError) else log.warning)("inbox watcher lost %s (%s); reconnecting in %.1fs", mailbox.label,
                        exc, delay)
            _drop(client)
            _sleep(delay * random.uniform(0.8, 1.2), stop, check_s)
            delay = min(delay * 2, max_delay_s)


def _idle_loop(client: IMAPClient, on_new, backstop_s: float, check_s: float, renew_s: float,
               stop, on_heartbeat) -> None:
    last_search = time.monotonic()
    while not stop():
        client.idle()
        started = time.monotonic()
        rang = False
        fast_empty = 0
        while not stop() and time.monotonic() - started < renew_s:
            asked = time.monotonic()
            responses = client.idle_check(timeout=check_s)
            # imapclient swallows EOF in idle_check and returns []: a closed connection shows
            # as empty answers that come back at once instead of after the timeout.
            fast_empty = fast_empty + 1 if not responses and \
                time.monotonic() - asked < check_s / 2 else 0
            if fast_empty >= 3:
                raise ConnectionError("the server closed the connection during IDLE")
            if on_heartbeat:
                on_heartbeat()
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                rang = True
                break
            if time.monotonic() - last_search >= backstop_s:
                break
        client.idle_done()  # the server must answer within the socket timeout
        if rang:
            _ring(on_new)
        elif time.monotonic() - last_search >= backstop_s:
            _backstop(client, on_new)
            last_search = time.monotonic()


def _poll_loop(client: IMAPClient, on_new, backstop_s: float, check_s: float, stop,
               on_heartbeat) -> None:
    while not stop():
        _sleep(backstop_s, stop, check_s)
        if stop():
            return
        if on_heartbeat:
            on_heartbeat()
        _backstop(client, on_new)


def _backstop(client: IMAPClient, on_new) -> None:
    """UID SEARCH: anything in the inbox is work the ingester has not done yet."""
    if client.search("ALL"):
        _ring(on_new)
    else:
        client.noop()  # keep the session fresh; a frozen server fails here too


def _ring(on_new) -> None:
    try:
        on_new()
    except Exception:  # noqa: BLE001 - a broker hiccup must not stop the watcher; the backstop rings again
        log.exception("could not start an ingest")


def _sleep(seconds: float, stop, step: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(step, max(0.0, deadline - time.monotonic())))


def _drop(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.shutdown()  # close the socket without a LOGOUT round trip to a dead server
    except Exception:  # noqa: BLE001
        pass
