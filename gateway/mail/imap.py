"""An IMAP mailbox as the gateway reaches it: the letters inbox (pipeline/intake.py) and
the reply mailbox (replies/intake.py) share these, as mail concerns, not pipeline steps."""

from __future__ import annotations

from dataclasses import dataclass

from imapclient import IMAPClient


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    ssl: bool = False
    timeout: float = 30.0

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}/{self.folder}"


def connect(mailbox: Mailbox) -> IMAPClient:
    client = IMAPClient(mailbox.host, port=mailbox.port, ssl=mailbox.ssl, timeout=mailbox.timeout,
                        use_uid=True)
    client.login(mailbox.user, mailbox.password)
    return client


def ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)
