"""Mailing a scanned reply to the letter's author, as the real services do."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .store import ReplyPage


def subject_for(written_number: str | None) -> str:
    return f"Ответ на письмо № {written_number}" if written_number else "Ответ на письмо"


def build_reply_message(
    *,
    sender: str,
    to: str,
    reply_id: str,
    written_number: str | None,
    pages: Sequence[ReplyPage],
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject_for(written_number)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=reply_id, domain=sender.rpartition("@")[2] or None)
    number_line = (
        f"Ответ на письмо № {written_number}."
        if written_number
        else "Номер письма на бланке ответа не указан."
    )
    msg.set_content(
        f"Здравствуйте!\n\n{number_line}\n"
        f"Во вложении скан бланка ответа ({len(pages)} стр.).\n\n"
        "Это письмо отправлено автоматически, не отвечайте на него.\n"
    )
    for page in pages:
        maintype, _, subtype = page.content_type.partition("/")
        ext = "jpg" if subtype == "jpeg" else subtype
        msg.add_attachment(
            page.data, maintype=maintype, subtype=subtype, filename=f"{reply_id}-{page.n}.{ext}"
        )
    return msg


def send_message(host: str, port: int, msg: EmailMessage, timeout: float = 30) -> None:
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(msg)
