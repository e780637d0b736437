"""The desk: assisted submission for services with no API (FSIN-Pismo and Zonatelecom
today). The adapter takes no call: each ready letter becomes a task for an organizer who
types it into the service's web form, field by field, then enters the number and price
the service gave. From there the letter continues like any other (notice, replies).

Domain functions for the dashboard: `desk_queue(session)` and `record_desk_submission(...)`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.models import Letter, LetterAttachment, Prisoner
from gateway.providers.base import (
    Accepted,
    Facility,
    LetterStatus,
    PermanentError,
    RemoteReply,
    ReplyPageRef,
    Submission,
)
from gateway.providers.profiles import ProviderProfile, load_profiles
from gateway.states import LetterState as S


class DeskProvider:
    """Registered as the `desk` entry point. Submissions are typed in by a person."""

    name = "desk"
    assisted = True
    default_profile = "fsin-pismo"  # the service an organizer types letters into

    def __init__(self, profile_name: str = default_profile):
        self.profile_name = profile_name

    @classmethod
    def from_settings(cls, settings) -> DeskProvider:
        return cls()

    @property
    def profile(self) -> ProviderProfile:
        return load_profiles()[self.profile_name]

    def submit(self, submission: Submission, idempotency_key: str) -> Accepted:
        raise PermanentError("the desk has no API: an organizer submits on the service's site",
                             code="assisted")

    def status(self, number: str) -> LetterStatus:
        raise PermanentError("the desk has no API to ask for a status", code="assisted")

    def replies(self, after: str | None, limit: int = 100) -> tuple[list[RemoteReply], str | None]:
        return [], after  # desk replies come by e-mail to the reply mailbox

    def reply_page(self, page: ReplyPageRef) -> tuple[str, bytes]:
        raise PermanentError("the desk has no API for reply pages", code="assisted")

    def facilities(self) -> list[Facility]:
        return []  # the service's own site is the catalogue; the directory is trusted

    def close(self) -> None:
        pass


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
    waiting_since: datetime
    fields: tuple[DeskField, ...]  # in the order of the service's form
    pages: tuple[str, ...]  # the text, one entry per page of the form
    photos: tuple[DeskPhoto, ...]
    reply_form: bool
    estimate: Decimal | None
    currency: str | None

    @property
    def text(self) -> str:
        return "".join(self.pages)


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


def _task(session: Session, letter: Letter, settings) -> DeskTask:
    p: Prisoner | None = letter.prisoner
    profile = load_profiles().get("fsin-pismo")
    text = letter.rendered or letter.body or ""
    fields = (
        DeskField("region", "Регион", "Region", p.region if p else ""),
        DeskField("facility", "Учреждение", "Facility", p.facility_name if p else ""),
        DeskField("last_name", "Фамилия", "Recipient surname", p.last_name if p else ""),
        DeskField("first_name", "Имя", "Recipient first name", p.first_name if p else ""),
        DeskField("middle_name", "Отчество", "Recipient patronymic",
                  (p.middle_name or "") if p else ""),
        DeskField("birth_year", "Год рождения", "Birth year",
                  str(p.birth_year or "") if p else ""),
        DeskField("author", "Отправитель", "Sender", letter.writer_name or settings.org_name),
        DeskField("author_email", "E-mail отправителя", "Sender e-mail",
                  settings.org_reply_email),
        DeskField("author_phone", "Телефон отправителя", "Sender phone", settings.org_phone),
    )
    photos = tuple(DeskPhoto(*row) for row in session.execute(
        select(LetterAttachment.id, LetterAttachment.filename, LetterAttachment.content_type,
               func.length(LetterAttachment.data))  # the size, never the bytes
        .where(LetterAttachment.letter_id == letter.id).order_by(LetterAttachment.id)))
    return DeskTask(
        letter_id=letter.id, public_id=letter.public_id, waiting_since=letter.updated_at,
        fields=fields, pages=split_pages(text, profile.page_chars if profile else 2500),
        photos=photos, reply_form=bool(settings.reply_ordered), estimate=letter.price,
        currency=letter.currency)


def desk_queue(session: Session, settings=None, limit: int | None = None) -> list[DeskTask]:
    """The desk's letters, oldest first, each with the service's form fields filled in."""
    if settings is None:
        from gateway.config import get_settings
        settings = get_settings()
    query = (select(Letter).where(Letter.state == S.DESK, Letter.provider == "desk")
             .order_by(Letter.updated_at, Letter.id))
    if limit is not None:
        query = query.limit(limit)
    return [_task(session, letter, settings) for letter in session.scalars(query)]


class DeskError(ValueError):
    """What the organizer typed cannot be recorded; the message says why."""


def record_desk_submission(session: Session, letter_id: int, number: str,
                           price: Decimal | None, actor: str, settings=None) -> list[int]:
    """An organizer submitted the letter on the service's site: DESK -> SUBMITTED with the
    number and price it gave. Returns outbound mail ids (the writer's 'sent' notice).
    A compare-and-set in SQL: two organizers recording the same letter cannot both win."""
    if settings is None:
        from gateway.config import get_settings
        settings = get_settings()
    number = " ".join((number or "").split())
    if not number:
        raise DeskError("enter the letter number the service gave")
    if len(number) > 64:
        raise DeskError("a letter number is at most 64 characters")
    if price is not None and (price < 0 or price > Decimal(100000)):
        raise DeskError(f"{price} is not a plausible price")
    taken = session.scalar(select(Letter.id).where(Letter.provider_number == number,
                                                   Letter.id != letter_id))
    if taken is not None:
        raise DeskError(f"number {number} is already recorded for letter #{taken}")
    letter, mail = actions.claim_submitted(session, settings, letter_id, number, price=price,
                                           how="typed in at the desk", actor=actor)
    if letter is None:
        raise DeskError(f"letter #{letter_id} is not waiting at the desk (someone recorded it?)")
    return mail
