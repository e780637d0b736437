"""The desk: letters to services with no API (FSIN-Pismo, Zonatelecom), typed into the
service's web form by a volunteer under the organization's account.

A queue per service and facility. A volunteer *takes* a letter: a lease in SQL (a
compare-and-set UPDATE), so two volunteers never type the same one, and an abandoned
lease runs out and frees it. The task shows exactly the fields the service's form asks,
in its order. Then the volunteer records the number and the price the service gave (a
price that differs from the quote is flagged on the timeline, not refused), and later what
became of it: delivered, censored (the service's reason or their own words), or not
accepted. Every outcome goes through gateway.actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from gateway import actions
from gateway.lifecycle import annotate
from gateway.models import Letter, LetterAttachment, LetterEvent, Prisoner, utcnow
from gateway.providers.profiles import ProviderProfile, load_profiles
from gateway.providers.services import TITLES
from gateway.states import LetterState as S
from gateway.states import Reason as R

DESK = "desk"  # the adapter whose letters wait here


@dataclass(frozen=True)
class DeskField:
    key: str
    label: str  # as on the service's form (Russian)
    label_en: str
    value: str


@dataclass(frozen=True)
class DeskPhoto:
    attachment_id: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class DeskTask:
    letter_id: int
    public_id: str
    service: str
    waiting_since: datetime
    fields: tuple[DeskField, ...]  # exactly the service's form, in its order
    pages: tuple[str, ...]  # the text, one entry per page of the form
    photos: tuple[DeskPhoto, ...]
    reply_form: bool
    estimate: Decimal | None
    currency: str | None
    leased_by: str | None = None
    lease_until: datetime | None = None

    @property
    def text(self) -> str:
        return "".join(self.pages)

    @property
    def title(self) -> str:
        return TITLES.get(self.service, self.service)


@dataclass(frozen=True)
class Queue:
    service: str
    facility_id: str
    facility_name: str
    waiting: int  # free to take
    taken: int  # leased now

    @property
    def title(self) -> str:
        return TITLES.get(self.service or "fsin-pismo", self.service)


class DeskError(ValueError):
    """What the volunteer asked cannot be done; the message says why."""


LABELS = {  # field -> (the form's label, English)
    "region": ("Регион", "Region"),
    "facility": ("Учреждение", "Facility"),
    "last_name": ("Фамилия", "Recipient surname"),
    "first_name": ("Имя", "Recipient first name"),
    "middle_name": ("Отчество", "Recipient patronymic"),
    "birth_year": ("Год рождения", "Birth year"),
    "author_name": ("Отправитель", "Sender"),
    "author_phone": ("Телефон отправителя", "Sender phone"),
    "author_email": ("E-mail отправителя", "Sender e-mail"),
    "author_email2": ("E-mail ещё раз", "Sender e-mail again"),
}


def split_pages(text: str, page_chars: int = 2500) -> tuple[str, ...]:
    """The text cut into the form's pages: at most `page_chars` code points each, cut at
    the last line break or space inside the page where there is one, so words stay whole.
    Joined back, the pages are exactly the text."""
    pages: list[str] = []
    rest = text
    while len(rest) > page_chars:
        head = rest[:page_chars]
        cut = max(head.rfind("\n"), head.rfind(" "))
        cut = cut + 1 if cut >= page_chars // 2 else page_chars
        pages.append(rest[:cut])
        rest = rest[cut:]
    pages.append(rest)
    return tuple(pages)


def _profile(letter: Letter) -> ProviderProfile:
    profiles = load_profiles()
    return profiles.get(letter.service or "fsin-pismo") or profiles["fsin-pismo"]


def _value(key: str, letter: Letter, p: Prisoner | None, settings) -> str:
    if key in ("author_email", "author_email2"):
        return settings.org_reply_email  # the organization's mailbox, never the writer's
    if key == "author_name":
        return letter.writer_name or settings.org_name
    if key == "author_phone":
        return settings.org_phone
    if p is None:
        return ""
    return {"region": p.region, "facility": p.facility_name, "last_name": p.last_name,
            "first_name": p.first_name, "middle_name": p.middle_name or "",
            "birth_year": str(p.birth_year or "")}[key]


def task(session: Session, letter: Letter, settings) -> DeskTask:
    profile = _profile(letter)
    p: Prisoner | None = letter.prisoner
    fields = tuple(DeskField(key, *LABELS[key], _value(key, letter, p, settings))
                   for key in profile.form if key in LABELS)
    photos = tuple(DeskPhoto(*row) for row in session.execute(
        select(LetterAttachment.id, LetterAttachment.filename, LetterAttachment.content_type,
               func.length(LetterAttachment.data))  # the size, never the bytes
        .where(LetterAttachment.letter_id == letter.id).order_by(LetterAttachment.id)))
    return DeskTask(
        letter_id=letter.id, public_id=letter.public_id, service=profile.name,
        waiting_since=letter.updated_at, fields=fields,
        pages=split_pages(letter.rendered or letter.body or "", profile.page_chars),
        photos=photos, reply_form="reply_form" in profile.form and bool(settings.reply_ordered),
        estimate=letter.price, currency=letter.currency, leased_by=letter.leased_by,
        lease_until=letter.lease_until)


def _waiting():
    return and_(Letter.state == S.DESK, Letter.provider == DESK)


def _free(now: datetime):
    return or_(Letter.lease_until.is_(None), Letter.lease_until <= now)


def queues(session: Session) -> list[Queue]:
    """The desk's queues, one per service and facility, with what is free and what is taken."""
    now = utcnow()
    rows = session.execute(
        select(Letter.service, Prisoner.facility_id, Prisoner.facility_name,
               func.count(), func.sum(_lease_held(now)))
        .join(Prisoner, Prisoner.id == Letter.prisoner_id)
        .where(_waiting()).group_by(Letter.service, Prisoner.facility_id,
                                       Prisoner.facility_name)
        .order_by(Letter.service, Prisoner.facility_name)).all()
    return [Queue(service or "", fid, name, count - int(held or 0), int(held or 0))
            for service, fid, name, count, held in rows]


def _lease_held(now: datetime):
    return case((Letter.lease_until > now, 1), else_=0)


def desk_queue(session: Session, settings=None, limit: int | None = None) -> list[DeskTask]:
    """Every letter waiting at the desk, oldest first, with its form filled in."""
    if settings is None:
        from gateway.config import get_settings
        settings = get_settings()
    query = (select(Letter).where(_waiting()).order_by(Letter.updated_at, Letter.id))
    if limit is not None:
        query = query.limit(limit)
    return [task(session, letter, settings) for letter in session.scalars(query)]


def mine(session: Session, volunteer: str) -> list[Letter]:
    """The letters this volunteer holds now (a page reload finds them again)."""
    return list(session.scalars(select(Letter).where(
        _waiting(), Letter.leased_by == volunteer, Letter.lease_until > utcnow())
        .order_by(Letter.id)))


def take(session: Session, settings, volunteer: str, *, service: str | None = None,
         facility_id: str | None = None, letter_id: int | None = None) -> Letter | None:
    """Lease the oldest free letter of a queue (or the one asked for) to this volunteer.
    A compare-and-set on the lease: of two volunteers taking at once, one gets it and the
    other the next one. None when the queue is empty. The caller commits."""
    now = utcnow()
    until = now + timedelta(minutes=settings.desk_lease_minutes)
    for _ in range(10):  # lost races move on to the next candidate
        query = select(Letter.id).where(_waiting(), _free(now))
        if letter_id is not None:
            query = query.where(Letter.id == letter_id)
        if service:
            query = query.where(Letter.service == service)
        if facility_id:
            query = query.join(Prisoner, Prisoner.id == Letter.prisoner_id).where(
                Prisoner.facility_id == facility_id)
        candidate = session.scalar(query.order_by(Letter.updated_at, Letter.id).limit(1))
        if candidate is None:
            return None
        won = session.execute(
            update(Letter).where(Letter.id == candidate, _waiting(), _free(now))
            .values(leased_by=volunteer, lease_until=until)
            .execution_options(synchronize_session=False)).rowcount
        if won == 1:
            letter = session.get(Letter, candidate, populate_existing=True)
            annotate(session, letter, f"taken at the desk by {volunteer}", actor=volunteer,
                     code=R.DESK_TAKEN)
            return letter
        if letter_id is not None:
            return None
    return None


def release(session: Session, letter_id: int, volunteer: str) -> bool:
    """Give a taken letter back to the queue untyped."""
    won = session.execute(
        update(Letter).where(Letter.id == letter_id, Letter.leased_by == volunteer,
                             Letter.state == S.DESK)
        .values(leased_by=None, lease_until=None)
        .execution_options(synchronize_session=False)).rowcount
    if won:
        annotate(session, session.get(Letter, letter_id, populate_existing=True),
                 f"given back by {volunteer}", actor=volunteer, code=R.DESK_RELEASED)
    return bool(won)


def held_by(session: Session, letter_id: int, volunteer: str) -> Letter:
    letter = session.get(Letter, letter_id, populate_existing=True)
    if letter is None or letter.state != S.DESK or letter.provider != DESK:
        raise DeskError(f"letter #{letter_id} is not waiting at the desk (someone recorded it?)")
    if letter.leased_by != volunteer or letter.lease_until is None or \
            letter.lease_until <= utcnow():
        raise DeskError(f"letter #{letter_id} is not yours to record: take it first")
    return letter


def clean_number(number: str) -> str:
    number = " ".join((number or "").split())
    if not number:
        raise DeskError("enter the letter number the service gave")
    if len(number) > 64:
        raise DeskError("a letter number is at most 64 characters")
    return number


def record(session: Session, settings, letter_id: int, volunteer: str, number: str,
           price: Decimal | None, *, lease: bool = True) -> list[int]:
    """The volunteer submitted it on the service's site: DESK -> SUBMITTED with the number
    and the price paid. Returns outbound mail ids (the writer's 'sent' notice). `lease`:
    only the volunteer holding the letter may (an organizer's CLI passes False)."""
    number = clean_number(number)
    if price is not None and (price < 0 or price > Decimal(100000)):
        raise DeskError(f"{price} is not a plausible price")
    if lease:
        held_by(session, letter_id, volunteer)
    taken = session.scalar(select(Letter.id).where(Letter.provider_number == number,
                                                   Letter.id != letter_id))
    if taken is not None:
        raise DeskError(f"number {number} is already recorded for letter #{taken}")
    quote = session.scalar(select(Letter.price).where(Letter.id == letter_id))
    letter, mail = actions.claim_submitted(session, settings, letter_id, number, price=price,
                                           how="typed in at the desk", actor=volunteer)
    if letter is None:
        raise DeskError(f"letter #{letter_id} is not waiting at the desk (someone recorded it?)")
    if price is not None and quote is not None and price != quote:
        # Flagged, not refused: the service's tariff may have changed; organizers look.
        annotate(session, letter, f"paid {price} where {quote} was quoted", actor=volunteer,
                 code=R.PRICE_DIFFERS)
    return mail


def refused(session: Session, settings, letter_id: int, volunteer: str, reason: str) -> None:
    """The service's form will not take the letter (the facility is gone from its list, the
    text is refused): nothing was paid. An organizer decides (HELD, with the reason)."""
    reason = " ".join(reason.split())[:500]
    if not reason:
        raise DeskError("say what the service's form answered")
    letter = held_by(session, letter_id, volunteer)
    letter.leased_by = letter.lease_until = None
    actions.hold(session, settings, letter, code=R.NOT_ACCEPTED, notify=False,
                 actor=volunteer, note=f"the service's form refused it: {reason}")


OUTCOMES = ("delivered", "censored", "not_accepted")


def submitted_here(session: Session, letter_id: int) -> Letter:
    """A letter the desk or the post recorded as sent, still waiting for news."""
    letter = session.get(Letter, letter_id, populate_existing=True)
    if letter is None or letter.state != S.SUBMITTED or letter.provider not in (DESK, "post"):
        raise DeskError(f"letter #{letter_id} is not a sent desk or post letter waiting for news")
    return letter


def record_outcome(session: Session, settings, letter_id: int, volunteer: str, outcome: str,
                   reason: str = "") -> list[int]:
    """What the service's account (or the post) says became of a sent letter."""
    letter = submitted_here(session, letter_id)
    reason = " ".join(reason.split())[:500]
    if outcome == "delivered":
        return actions.record_delivered(session, settings, letter, actor=volunteer)
    if outcome == "censored":
        return actions.record_censored(session, settings, letter, reason or None, actor=volunteer)
    if outcome == "not_accepted":
        if not reason:
            raise DeskError("say why the service did not accept it (the writer reads it)")
        code = R.RETURNED_BY_POST if letter.provider == "post" else R.NOT_ACCEPTED
        return actions.record_undelivered(session, settings, letter, reason, code=code,
                                          actor=volunteer)
    raise DeskError(f"unknown outcome {outcome!r}")


def awaiting_news(session: Session, limit: int = 50) -> list[Letter]:
    """Sent desk and post letters with no news yet, oldest first."""
    return list(session.scalars(select(Letter).where(
        Letter.state == S.SUBMITTED, Letter.provider.in_((DESK, "post")))
        .order_by(Letter.submitted_at, Letter.id).limit(limit)))


def find(session: Session, query: str, limit: int = 10) -> list[Letter]:
    """Sent letters by number, or by the prisoner's surname: for a scan whose number is
    missing or misread."""
    query = " ".join(query.split())
    if not query:
        return []
    by_number = Letter.provider_number == query
    by_name = func.lower(Prisoner.last_name).startswith(query.split()[0].lower())
    return list(session.scalars(
        select(Letter).join(Prisoner, Prisoner.id == Letter.prisoner_id)
        .where(Letter.state.in_((S.SUBMITTED, S.DELIVERED)), or_(by_number, by_name))
        .order_by(Letter.submitted_at.desc()).limit(limit)))


def volunteer_counts(session: Session, since: datetime | None = None) -> list[tuple[str, dict]]:
    """Per volunteer: letters typed in, outcomes recorded, for organizers to thank and plan."""
    since = since or utcnow() - timedelta(days=30)
    rows = session.execute(
        select(LetterEvent.actor, LetterEvent.reason_code, func.count())
        .where(LetterEvent.at >= since, LetterEvent.actor != "system",
               LetterEvent.reason_code.in_((R.SUBMITTED, R.DELIVERED, R.CENSORED,
                                            R.NOT_ACCEPTED, R.RETURNED_BY_POST, R.DESK_TAKEN)))
        .group_by(LetterEvent.actor, LetterEvent.reason_code)).all()
    counts: dict[str, dict] = {}
    for who, code, n in rows:
        counts.setdefault(who, {})[code] = n
    return sorted(counts.items(), key=lambda kv: -kv[1].get(R.SUBMITTED, 0))


def differing_prices(session: Session, since: datetime | None = None) -> list[LetterEvent]:
    """Desk prices that differed from the quote, newest first: a tariff changed, or a typo."""
    since = since or utcnow() - timedelta(days=30)
    return list(session.scalars(select(LetterEvent).where(
        LetterEvent.reason_code == R.PRICE_DIFFERS, LetterEvent.at >= since)
        .order_by(LetterEvent.id.desc()).limit(100)))
