"""An SMTP sink on loopback (aiosmtpd) that keeps what it receives, can deliver chosen
recipients into Dovecot, and can refuse chosen recipients with a given reply."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.ports import free_port
from gateway.devstack.startable import Startable

# Recipient (lower-cased) -> full SMTP reply such as "451 4.3.0 try later", or a
# function of the recipient returning such a reply or None to accept.
FailCodes = Mapping[str, str] | Callable[[str], str | None]


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class SmtpSink(Startable):
    """`SmtpSink().start()`; send to host:port; read `.messages` or `wait_for(...)`.

    Every accepted message is kept in `messages`. Recipients mapped in `deliver`
    ("letters@gateway.local" -> (dovecot, "letters")) also get it APPENDed to that
    Dovecot user's INBOX. If `maildir` is given, messages with at least one recipient
    *not* delivered into Dovecot (i.e. outgoing mail) are written there as .eml files.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        port: int = 0,
        maildir: Path | None = None,
        deliver: dict[str, tuple[DovecotServer, str]] | None = None,
        fail_codes: FailCodes | None = None,
    ) -> None:
        self.port = port
        self.maildir = Path(maildir) if maildir is not None else None
        self.deliver = {addr.lower(): target for addr, target in (deliver or {}).items()}
        # May be replaced at any time, e.g. to make a recipient fail mid-test.
        self.fail_codes = fail_codes
        self._messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def start(self) -> SmtpSink:
        if self._controller is not None:
            raise RuntimeError("SMTP sink already started")
        if not self.port:
            # aiosmtpd's Controller probes the port to know it is ready, so it needs a real one.
            self.port = free_port()
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            enable_SMTPUTF8=True,
            decode_data=False,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(
        self, predicate: Callable[[ReceivedMail], bool] | None = None, timeout: float = 10.0
    ) -> ReceivedMail:
        """The first received message matching `predicate` (any message if None),
        waiting up to `timeout` seconds for it to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for mail in self.messages:
                if predicate is None or predicate(mail):
                    return mail
            if time.monotonic() >= deadline:
                seen = [(m.rcpt_tos, m.message["Subject"]) for m in self.messages]
                raise TimeoutError(
                    f"no matching message within {timeout:.1f}s; received {len(seen)}: {seen}"
                )
            time.sleep(0.02)

    # --- called from the aiosmtpd thread ---------------------------------------------

    def _refusal(self, recipient: str) -> str | None:
        codes = self.fail_codes
        if codes is None:
            return None
        if callable(codes):
            return codes(recipient)
        return {k.lower(): v for k, v in codes.items()}.get(recipient.lower())

    def _accept(self, mail: ReceivedMail) -> None:
        undelivered = []
        for rcpt in mail.rcpt_tos:
            target = self.deliver.get(rcpt.lower())
            if target is None:
                undelivered.append(rcpt)
            else:
                dovecot, user = target
                dovecot.append(user, mail.raw)
        if undelivered and self.maildir is not None:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
            (self.maildir / name).write_bytes(mail.raw)
        with self._lock:
            self._messages.append(mail)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.sink._refusal(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw: Any = envelope.content
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=email.message_from_bytes(raw, policy=email.policy.default),  # type: ignore[arg-type]
        )
        try:
            # Dovecot APPEND blocks; keep the event loop free for other sessions.
            await asyncio.get_running_loop().run_in_executor(None, self.sink._accept, mail)
        except Exception as exc:  # a real MTA answers a local delivery failure with 451
            return f"451 4.3.0 local delivery failed: {exc}"
        return "250 Message accepted for delivery"
