"""Ask the provider what became of submitted letters, less often as they age."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.lifecycle import move
from gateway.models import Letter, utcnow
from gateway.providers.base import Provider, ProviderError
from gateway.states import LetterState as S


def next_look(age: timedelta) -> timedelta:
    if age < timedelta(hours=6):
        return timedelta(minutes=30)
    if age < timedelta(days=3):
        return timedelta(hours=3)
    return timedelta(hours=12)


def due_for_status(session: Session, provider: str, limit: int = 200) -> list[int]:
    return list(session.scalars(
        select(Letter.id).where(Letter.state == S.SUBMITTED, Letter.provider == provider,
                                Letter.next_attempt_at <= utcnow()).limit(limit)))


def poll_statuses(session_factory: Callable[[], Session], provider: Provider,
                  letter_ids: list[int]) -> dict[str, int]:
    counts = {"delivered": 0, "censored": 0, "unchanged": 0, "errors": 0}
    for letter_id in letter_ids:
        with session_factory() as session:
            letter = session.get(Letter, letter_id)
            if letter is None or letter.state != S.SUBMITTED or not letter.provider_number:
                continue
            try:
                status = provider.status(letter.provider_number)
            except ProviderError:
                counts["errors"] += 1
                letter.next_attempt_at = utcnow() + timedelta(minutes=15)
                session.commit()
                continue
            letter.provider_status = status.status
            if status.status == "delivered":
                move(session, letter, S.DELIVERED, note="delivered to the prisoner")
                counts["delivered"] += 1
            elif status.status == "rejected":
                move(session, letter, S.CENSORED, note=f"censor: {status.reason or 'no reason given'}")
                counts["censored"] += 1
            else:
                letter.next_attempt_at = utcnow() + next_look(utcnow() - letter.submitted_at)
                counts["unchanged"] += 1
            session.commit()
    return counts
