"""Ask the provider what became of submitted letters, less often as they age.

DELIVERED and CENSORED are recorded, told to the writer (a 'delivered' / 'censored'
notice in the same transaction), and the censor's reason is kept per facility
(`censor_decisions`) so organizers learn what each censor stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.models import CensorDecision, Letter, utcnow
from gateway.providers.base import PermanentError, Provider, ProviderError, TransientError
from gateway.states import LetterState as S

if TYPE_CHECKING:
    from gateway.rules.base import PastCensorship


def next_look(age: timedelta) -> timedelta:
    if age < timedelta(hours=6):
        return timedelta(minutes=30)
    if age < timedelta(days=3):
        return timedelta(hours=3)
    return timedelta(hours=12)


# A letter nobody has news of after this long stops being polled; a person may look.
GIVE_UP_AFTER = timedelta(days=45)


def due_for_status(session: Session, provider: str, limit: int = 200) -> list[int]:
    return list(session.scalars(
        select(Letter.id).where(Letter.state == S.SUBMITTED, Letter.provider == provider,
                                Letter.next_attempt_at <= utcnow())
        .order_by(Letter.next_attempt_at).limit(limit)))




def poll_statuses(session_factory: Callable[[], Session], provider: Provider,
                  letter_ids: list[int], settings=None) -> dict[str, int]:
    """Returns counts, and under "mail" the outbound ids to send (notices)."""
    if settings is None:
        from gateway.config import get_settings
        settings = get_settings()
    counts: dict = {"delivered": 0, "censored": 0, "unchanged": 0, "errors": 0, "mail": []}
    for letter_id in letter_ids:
        with session_factory() as session:
            letter = session.get(Letter, letter_id)
            if letter is None or letter.state != S.SUBMITTED or not letter.provider_number:
                continue
            try:
                status = provider.status(letter.provider_number)
            except ProviderError as exc:
                counts["errors"] += 1
                wait = timedelta(minutes=15)
                if isinstance(exc, TransientError) and exc.retry_after:
                    wait = max(wait, timedelta(seconds=exc.retry_after))
                if isinstance(exc, PermanentError):  # e.g. 404: not the provider's letter
                    wait = timedelta(hours=12)
                letter.next_attempt_at = utcnow() + wait
                session.commit()
                if isinstance(exc, TransientError):
                    break  # the provider is struggling: the rest wait for the next round
                continue
            letter.provider_status = status.status
            if status.status == "delivered":
                counts["mail"] += actions.record_delivered(session, settings, letter)
                counts["delivered"] += 1
            elif status.status == "rejected":
                counts["mail"] += actions.record_censored(session, settings, letter,
                                                          status.reason)
                counts["censored"] += 1
            else:
                age = utcnow() - (letter.submitted_at or utcnow())
                letter.next_attempt_at = None if age > GIVE_UP_AFTER else utcnow() + next_look(age)
                counts["unchanged"] += 1
            session.commit()
    return counts


@dataclass(frozen=True)
class CensorReason:
    facility_id: str | None
    facility_name: str | None
    reason: str | None
    letters: int
    last_at: datetime


# How far back, and how many, of a facility's censorships a new letter is weighed against.
CENSOR_MEMORY = timedelta(days=90)
CENSOR_MEMORY_LETTERS = 30


def recent_censorships(session: Session, facility_id: str | None) -> tuple[PastCensorship, ...]:
    """The letters this facility's censor stopped lately, newest first, for the
    censor_memory rule (the text only while retention keeps it)."""
    # Here, not at the top: the dashboard imports this module for censor_reasons, and
    # gateway.rules would bring lingua and the lexicons into it (~15 MB it never uses).
    from gateway.rules.base import PastCensorship

    if not facility_id:
        return ()
    rows = session.execute(
        select(CensorDecision.letter_id, CensorDecision.reason, CensorDecision.features,
               Letter.body)
        .join(Letter, Letter.id == CensorDecision.letter_id)
        .where(CensorDecision.facility_id == facility_id,
               CensorDecision.at >= utcnow() - CENSOR_MEMORY)
        .order_by(CensorDecision.at.desc(), CensorDecision.id.desc())
        .limit(CENSOR_MEMORY_LETTERS))
    return tuple(PastCensorship(letter_id, reason, tuple((features or {}).get("topics", ())),
                                len((features or {}).get("photos", ())), body)
                 for letter_id, reason, features, body in rows)


def censored_facilities(session: Session) -> frozenset[str]:
    """The facilities whose censor stopped a letter within CENSOR_MEMORY: for every other
    one `recent_censorships` is empty, and a batch need not ask."""
    return frozenset(session.scalars(
        select(CensorDecision.facility_id).distinct()
        .where(CensorDecision.at >= utcnow() - CENSOR_MEMORY,
               CensorDecision.facility_id.is_not(None))))


def censor_reasons(session: Session, facility_id: str | None = None) -> list[CensorReason]:
    """What censors stopped, grouped by facility and reason, most frequent first."""
    query = (select(CensorDecision.facility_id, CensorDecision.facility_name,
                    CensorDecision.reason, func.count(), func.max(CensorDecision.at))
             .group_by(CensorDecision.facility_id, CensorDecision.facility_name,
                       CensorDecision.reason)
             .order_by(func.count().desc(), func.max(CensorDecision.at).desc()))
    if facility_id is not None:
        query = query.where(CensorDecision.facility_id == facility_id)
    return [CensorReason(*row) for row in session.execute(query)]
