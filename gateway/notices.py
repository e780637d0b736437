"""Queue an e-mail to a writer in the outbox, in the same transaction as the state change.

The outbox row's unique key is the rate limit: one rejection notice of a kind per writer
per day (robots and loops cannot make us chatty), one 'sent' notice per letter, one forward
per letter's reply. The recipient is stored sealed; the To header is added at send time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.crypto import seal, unseal
from gateway.intake.names import inflect_full_name
from gateway.mail.compose import Page, compose
from gateway.models import Letter, OutboundMail, Prisoner, utcnow

SUBJECTS = {
    "unknown_recipient": "Кому ваше письмо? / Who is your letter for?",
    "ambiguous_recipient": "Уточните адресата / Please name the recipient",
    "returned": "Письмо нужно исправить / Your letter needs a change",
    "held": "Письмо на проверке / Your letter is being reviewed",
    "sent": "Письмо отправлено / Your letter has been sent",
    "reply": "Ответ на ваше письмо / A reply to your letter",
}
PER_WRITER_PER_DAY = {"unknown_recipient", "ambiguous_recipient", "returned"}


def _dedup_key(kind: str, letter: Letter, reply_id: int | None) -> str:
    if kind in PER_WRITER_PER_DAY:
        return f"{kind}:{letter.sender_hash}:{utcnow().date().isoformat()}"
    if kind == "reply":
        return f"reply:{letter.id}"
    return f"{kind}:{letter.id}"


def letter_context(letter: Letter, prisoner: Prisoner | None, settings) -> dict:
    return {
        "org_name": settings.org_name,
        "letter_date": letter.created_at or utcnow(),
        "prisoner_name": prisoner.full_name if prisoner else "",
        "prisoner_datv": _inflect(prisoner, "datv"),
        "prisoner_gent": _inflect(prisoner, "gent"),
        "subject": letter.subject or "",
        "number": letter.provider_number or "",
        "pages": letter.pages or 0,
        "reply_ordered": settings.reply_ordered,
    }


def _inflect(prisoner: Prisoner | None, case: str) -> str:
    if prisoner is None:
        return ""
    return inflect_full_name(prisoner.last_name, prisoner.first_name, prisoner.middle_name, case)


def queue_notice(session: Session, settings, letter: Letter, kind: str, *, parsed=None,
                 reply_id: int | None = None, pages: tuple[Page, ...] = (),
                 **context) -> list[int]:
    """Returns [outbound id] when queued, [] when the rate limit already had one."""
    secret = settings.secret_key.get_secret_value()
    if parsed is not None:
        recipient = parsed.return_path or parsed.sender
        in_reply_to = parsed.message_id
    else:
        recipient = unseal(secret, letter.sender_sealed)
        in_reply_to = None
    prisoner = session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None
    ctx = letter_context(letter, prisoner, settings)
    if "candidates" in context:
        context["candidates"] = [
            {"name": " ".join(x for x in (c.last_name, c.first_name, c.middle_name) if x),
             "birth_year": c.birth_year, "facility": c.facility_name, "code": c.code}
            for c in context["candidates"]]
    ctx.update(context)
    dedup_key = _dedup_key(kind, letter, reply_id)
    message = compose(kind, to=None, from_addr=settings.gateway_address,
                      from_name=settings.org_name, subject=SUBJECTS[kind], context=ctx,
                      in_reply_to=in_reply_to if kind != "reply" else None, pages=pages,
                      dedup_key=dedup_key, domain=settings.gateway_address.partition("@")[2])
    row = OutboundMail(dedup_key=dedup_key, kind=kind, letter_id=letter.id, reply_id=reply_id,
                       message=bytes(message), recipient_sealed=seal(secret, recipient),
                       next_attempt_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return []
    return [row.id]


def due(now: datetime | None = None):
    return OutboundMail.next_attempt_at <= (now or utcnow())
