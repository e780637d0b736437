"""An IMAP mailbox as the gateway reaches it: the letters inbox (pipeline/intake.py) and
the reply mailbox (replies/intake.py) share these, as mail concerns, not pipeline steps."""

from __future__ import annotations

from dataclasses import dataclass

from imapclient import IMAPClient

from gateway.mail.transport import open_imap


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    ssl: bool = False  # the old switch: implicit TLS when `security` is not given
    timeout: float = 30.0
    security: str | None = None  # none | starttls | tls (see gateway.mail.transport)
    ca_file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}/{self.folder}"

    @property
    def mode(self) -> str:
        return self.security or ("tls" if self.ssl else "none")

    @classmethod
    def inbox(cls, s) -> Mailbox:
        """The shared inbox participants write to."""
        return cls(s.imap_host, s.imap_port, s.imap_user, s.imap_password.get_secret_value(),
                   s.imap_folder, s.imap_processed_folder, security=s.imap_mode(),
                   ca_file=str(s.tls_ca_file) if s.tls_ca_file else None)

    @classmethod
    def replies(cls, s) -> Mailbox:
        """The mailbox the services e-mail scans to (and our bounces come back to)."""
        return cls(s.imap_host, s.imap_port, s.reply_imap_user,
                   s.reply_imap_password.get_secret_value(), s.imap_folder,
                   s.imap_processed_folder, security=s.imap_mode(),
                   ca_file=str(s.tls_ca_file) if s.tls_ca_file else None)


def connect(mailbox: Mailbox) -> IMAPClient:
    return open_imap(mailbox.host, mailbox.port, security=mailbox.mode, timeout=mailbox.timeout,
                     user=mailbox.user, password=mailbox.password, ca_file=mailbox.ca_file)


def ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)
