"""Queue an e-mail to a writer in the outbox, in the same transaction as the state change.

Who gets nothing: robots (the letter's message was automated, or the letter is IGNORED),
and writers who asked us to stop or whose address bounced (a Suppression row). How much:
the outbox row's unique key is the rate limit — notices a message of ours can provoke
(PER_WRITER_PER_DAY) go out once per kind per writer per day, outcome notices once per
letter, a forwarded reply once per letter — and no writer gets more than
`notices_per_writer_per_day` notices a day in all, whatever loop we are caught in.

"received" is sent late on purpose: it is queued with a delay, and the letter's next notice
(sent, held, returned…) supersedes it while it is still waiting, so a writer whose letter is
sent at once gets one mail, not two. The recipient is stored sealed; To is added at send time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.crypto import keyring
from gateway.db import one_of
from gateway.intake.names import inflect_full_name
from gateway.mail.authentication import authenticate
from gateway.mail.compose import Page, compose_bytes
from gateway.models import Letter, OutboundMail, Prisoner, Suppression, utcnow
from gateway.states import LetterState
from gateway.states import MailState as MS

SUBJECTS = {
    "received": "Письмо получено / Your letter has arrived",
    "confirm": "Подтвердите адрес: код {token_shown} / Confirm your address: code {token_shown}",
    "unknown_recipient": "Кому ваше письмо? / Who is your letter for?",
    "ambiguous_recipient": "Уточните адресата / Please name the recipient",
    "document_unreadable": "Не удалось прочитать вложение / We could not read the attachment",
    "returned": "Письмо нужно исправить / Your letter needs a change",
    "held": "Письмо на проверке / Your letter is being reviewed",
    "sent": "Письмо отправлено / Your letter has been sent",
    "delivered": "Письмо вручено / Your letter has been delivered",
    "censored": "Цензор не пропустил письмо / The censor stopped your letter",
    "refused": "Служба не приняла письмо / The service did not accept your letter",
    "split": "Письмо разделено на части / Your letter was split into parts",
    "undelivered": "Письмо не дошло / Your letter did not arrive",
    "reply": "Ответ на ваше письмо / A reply to your letter",
    "guidance": "Как написать письмо / How to write a letter",
}
# Notices an incoming message can provoke: one of a kind per writer per day.
# (Not "ambiguous_recipient": each waiting letter has its own question, which its answer names.)
PER_WRITER_PER_DAY = {"unknown_recipient", "returned", "held",
                      "received", "confirm", "guidance"}
# A forwarded reply is the prisoner's letter, not a notice: outside the daily cap.
NOT_CAPPED = {"reply"}
# Kinds that make a waiting "received" notice for the same letter pointless.
SUPERSEDES_RECEIVED = {"sent", "held", "returned", "delivered", "censored", "undelivered",
                       "confirm", "refused"}

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


def _dedup_key(kind: str, letter: Letter, reply_id: int | None) -> str:
    if kind in PER_WRITER_PER_DAY:
        return f"{kind}:{letter.sender_hash}:{utcnow().date().isoformat()}"
    if kind == "reply":
        return f"reply:{letter.id}"
    return f"{kind}:{letter.id}"


def en_date(value: datetime) -> str:
    return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"


def letter_context(letter: Letter, prisoner: Prisoner | None, settings) -> dict:
    when = letter.created_at or utcnow()
    return {
        "org_name": settings.org_name,
        "letter_date": when,
        "letter_date_en": en_date(when),
        "prisoner_name": prisoner.full_name if prisoner else "",
        "prisoner_datv": _inflect(prisoner, "datv"),
        "prisoner_gent": _inflect(prisoner, "gent"),
        "subject": letter.subject or "",
        "number": letter.provider_number or "",
        "pages": letter.pages or 0,
        "reply_ordered": settings.reply_ordered,
        # It named a campaign outside its dates and went as an ordinary letter.
        "campaign_note": next((f for f in letter.findings or ()
                               if f.get("rule") == "campaign"), None),
    }


def _inflect(prisoner: Prisoner | None, case: str) -> str:
    if prisoner is None:
        return ""
    return inflect_full_name(prisoner.last_name, prisoner.first_name, prisoner.middle_name, case)


def _sent_today(session: Session, writer_hashes: set[str]) -> dict[str, int]:
    """Notices each writer was sent (or will be) today, against the daily cap."""
    if not writer_hashes:
        return {}
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return dict(session.execute(
        select(OutboundMail.writer_hash, func.count()).where(
            one_of(session, OutboundMail.writer_hash, writer_hashes), OutboundMail.created_at >= start,
            OutboundMail.kind.not_in(NOT_CAPPED), OutboundMail.state != MS.SUPERSEDED)
        .group_by(OutboundMail.writer_hash)).all())


def _suppressed(session: Session, writer_hashes: set[str]) -> set[str]:
    if not writer_hashes:
        return set()
    return set(session.scalars(select(Suppression.address_hash).where(
        one_of(session, Suppression.address_hash, writer_hashes))))


def _supersede_received(session: Session, letter_ids: list[int]) -> None:
    """A still-waiting 'received' notice for these letters is dropped, and its daily slot freed."""
    for row in session.scalars(select(OutboundMail).where(
            one_of(session, OutboundMail.letter_id, letter_ids), OutboundMail.kind == "received",
            OutboundMail.state == MS.PENDING, OutboundMail.next_attempt_at > utcnow())):
        session.execute(update(OutboundMail).where(OutboundMail.id == row.id,
                                                   OutboundMail.state == MS.PENDING)
                        .values(state=MS.SUPERSEDED, dedup_key=f"{row.dedup_key}:superseded:{row.id}")
                        .execution_options(synchronize_session=False))


def own_domains(settings) -> frozenset[str]:
    return frozenset(a.rpartition("@")[2].lower().rstrip(".")
                     for a in (settings.gateway_address, settings.org_reply_email))


def _in_domains(address: str | None, domains: frozenset[str]) -> bool:
    domain = (address or "").rpartition("@")[2].lower().rstrip(".")
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in domains)


def unproven_own_domain(parsed, settings) -> bool:
    """Mail from (or bouncing to) an address of the organization's own domain that our
    MTA did not see pass DMARC/DKIM: anyone can write that From, and a notice to it would
    be mail we send ourselves on a stranger's say-so (a loop, or a lure in our name)."""
    domains = own_domains(settings)
    if not any(_in_domains(a, domains) for a in (parsed.sender, parsed.return_path)):
        return False
    return authenticate(parsed.auth_results, own_authserv_id=settings.own_authserv_id,
                        from_domain=(parsed.sender or "").rpartition("@")[2] or None
                        ).verdict != "pass"


def queue_notice(session: Session, settings, letter: Letter, kind: str, *, parsed=None,
                 reply_id: int | None = None, pages: tuple[Page, ...] = (),
                 send_after: timedelta | None = None, **context) -> list[int]:
    """Returns [outbound id] when queued, [] when nothing is to be sent (robot, opted out,
    rate limit). With `send_after`, the row waits that long (the caller must not publish
    it; the sweeper sends it when due)."""
    if parsed is not None and parsed.automated:
        return []  # robots are never answered, whoever asks
    if parsed is not None and unproven_own_domain(parsed, settings):
        return []
    return _queue(session, settings, [letter], kind, parsed=parsed, reply_id=reply_id,
                  pages=pages, send_after=send_after, context=context).get(letter.id, [])


def queue_notices(session: Session, settings, letters: list[Letter], kind: str) -> dict[int, list[int]]:
    """queue_notice for a batch of letters (no parsed message, no extra context): the same
    rules, with the suppression, supersede and daily-cap look-ups and the insert made once
    for the batch. Returns {letter id: [outbound id]} for the letters that got one."""
    return _queue(session, settings, letters, kind, parsed=None, reply_id=None, pages=(),
                  send_after=None, context={})


def _queue(session: Session, settings, letters: list[Letter], kind: str, *, parsed,
           reply_id: int | None, pages: tuple[Page, ...], send_after: timedelta | None,
           context: dict) -> dict[int, list[int]]:
    letters = [le for le in letters if le.state != LetterState.IGNORED]  # robots: never
    suppressed = _suppressed(session, {le.sender_hash for le in letters if le.sender_hash})
    letters = [le for le in letters if le.sender_hash not in suppressed or not le.sender_hash]
    if not letters:
        return {}
    if kind in SUPERSEDES_RECEIVED:
        _supersede_received(session, [le.id for le in letters])
    capped = kind not in NOT_CAPPED
    sent = _sent_today(session, {le.sender_hash for le in letters if le.sender_hash}) \
        if capped else {}
    if "candidates" in context:
        context["candidates"] = [
            {"name": " ".join(x for x in (c.last_name, c.first_name, c.middle_name) if x),
             "birth_year": c.birth_year, "facility": c.facility_name, "code": c.code}
            for c in context["candidates"]]
    keys = keyring(settings)
    domain = settings.gateway_address.partition("@")[2]
    rows: list[tuple[Letter, dict]] = []
    for letter in letters:
        if parsed is not None:
            # RFC 3834: an answer to a message goes to its return path.
            recipient = parsed.return_path or parsed.sender
            in_reply_to = parsed.message_id
        elif letter.sender_sealed:
            recipient = keys.unseal(letter.sender_sealed)
            in_reply_to = None
        else:
            continue  # no address we may write to (checking.py keeps none it cannot trust)
        if not recipient:
            continue
        prisoner = session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None
        ctx = letter_context(letter, prisoner, settings)
        ctx.update(context)
        dedup_key = _dedup_key(kind, letter, reply_id)
        subject = SUBJECTS[kind].format_map(ctx) if "{" in SUBJECTS[kind] else SUBJECTS[kind]
        mail = compose_bytes(kind, to=None, from_addr=settings.gateway_address,
                             from_name=settings.org_name, subject=subject, context=ctx,
                             in_reply_to=in_reply_to if kind != "reply" else None,
                             pages=pages, dedup_key=dedup_key, domain=domain)
        rows.append((letter, dict(
            dedup_key=dedup_key, kind=kind, letter_id=letter.id, reply_id=reply_id,
            message=keys.seal_bytes(mail.data), recipient_sealed=keys.seal(recipient),
            next_attempt_at=utcnow() + (send_after or timedelta(0)),
            message_id=mail.message_id, writer_hash=letter.sender_hash)))
    return _insert(session, rows, sent if capped else None, settings.notices_per_writer_per_day)


def _insert(session: Session, rows: list[tuple[Letter, dict]], sent: dict[str, int] | None,
            cap: int) -> dict[int, list[int]]:
    """Insert the rows the daily cap allows, all in one statement. A row whose dedup key
    exists already (the notice went before) fails that statement: then row by row, each
    in its own savepoint, so only the duplicate is skipped and the cap counts exactly."""
    def allowed(letter: Letter, counts: dict[str, int]) -> bool:
        if sent is None or not letter.sender_hash:
            return True
        if counts.get(letter.sender_hash, 0) >= cap:
            return False
        counts[letter.sender_hash] = counts.get(letter.sender_hash, 0) + 1
        return True

    counts = dict(sent or {})
    batch = [(letter, values) for letter, values in rows if allowed(letter, counts)]
    if not batch:
        return {}
    # Written with a multi-row INSERT (not as ORM objects: nothing reads them back here),
    # the ids returned in the order given.
    returning = insert(OutboundMail).returning(OutboundMail.id, sort_by_parameter_order=True)
    try:
        with session.begin_nested():
            ids = list(session.scalars(returning, [values for _, values in batch]))
    except IntegrityError:
        if len(rows) == 1:
            return {}  # the one notice asked for exists already
        counts, queued = dict(sent or {}), {}
        for letter, values in rows:
            if sent is not None and letter.sender_hash and \
                    counts.get(letter.sender_hash, 0) >= cap:
                continue
            try:
                with session.begin_nested():
                    [row_id] = session.scalars(returning, [values])
            except IntegrityError:
                continue
            if letter.sender_hash:
                counts[letter.sender_hash] = counts.get(letter.sender_hash, 0) + 1
            queued[letter.id] = [row_id]
        return queued
    return {letter.id: [row_id] for (letter, _), row_id in zip(batch, ids, strict=True)}


STILL_ON_ITS_WAY = (LetterState.READY, LetterState.SUBMITTING, LetterState.UNKNOWN,
                    LetterState.DESK)


def queue_late_received(session: Session, settings, limit: int = 200) -> list[int]:
    """'Received, here is what happens next' for letters still not sent after
    `received_notice_after_s`. Queued here, late, rather than for every letter at check
    time: most letters are sent within seconds, and their 'sent' notice says it all."""
    now = utcnow()
    after = timedelta(seconds=settings.received_notice_after_s)
    told = select(OutboundMail.id).where(
        OutboundMail.letter_id == Letter.id,
        OutboundMail.kind.in_(["received", *SUPERSEDES_RECEIVED])).exists()
    letters = session.scalars(
        select(Letter).where(Letter.state.in_(STILL_ON_ITS_WAY),
                             Letter.created_at <= now - after,
                             Letter.created_at >= now - after - timedelta(days=1),
                             Letter.sender_sealed.is_not(None), ~told)
        .order_by(Letter.id).limit(limit))
    queued: list[int] = []
    for letter in letters:
        queued += queue_notice(session, settings, letter, "received")
    return queued


def notice_answered(session: Session, message_ids: tuple[str, ...],
                    writer_hash: str | None) -> OutboundMail | None:
    """The newest of our notices to this writer that a message answers (In-Reply-To or
    References name its Message-ID). Another writer's notice does not count."""
    if not message_ids or not writer_hash:
        return None
    return session.scalar(select(OutboundMail).where(
        OutboundMail.message_id.in_(list(message_ids)[:100]),
        OutboundMail.writer_hash == writer_hash).order_by(OutboundMail.id.desc()).limit(1))


def due(now: datetime | None = None):
    return OutboundMail.next_attempt_at <= (now or utcnow())
