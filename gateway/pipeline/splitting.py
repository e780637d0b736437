"""A letter longer than its facility takes, split into letters that fit, where the
organization allows it (GATEWAY_SPLIT_MAX_PARTS).

Each part is a letter of its own: its own public id (so its own Idempotency-Key and its
own charge, each exactly once through the usual submission), its own rendering with the
greeting and signature the template gives every letter, and "(1/3)" printed at the top so
the prisoner reads them in order. The first part is the letter the writer sent; the
others point to it. Cut at paragraph, then sentence ends (rules/length.split_text)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from gateway.formatting import render_letter
from gateway.models import Letter, LetterEvent, Prisoner, utcnow
from gateway.pipeline.intake import new_public_id
from gateway.pricing import count_pages, quote
from gateway.providers.catalogue import FacilityLimits
from gateway.providers.profiles import ProviderProfile
from gateway.rules.base import Decision
from gateway.rules.length import split_text
from gateway.states import LetterState as S
from gateway.states import Reason

_NUMBER = "({n}/{total})\n\n"
_SPLIT_CODE = "length.too_long"


def number(text: str, n: int, total: int) -> str:
    return _NUMBER.format(n=n, total=total) + text


def page_limit(profile: ProviderProfile, facility: FacilityLimits) -> int | None:
    limits = [x for x in (facility.max_pages, profile.max_pages) if x]
    return min(limits) if limits else None


def plan(body: str, render, profile: ProviderProfile, facility: FacilityLimits,
         max_parts: int) -> list[tuple[str, str]] | None:
    """(part text, numbered rendering) for each part, or None when the letter cannot be
    split within max_parts parts that each fit. `render(text)` renders one part."""
    limit = page_limit(profile, facility)
    if limit is None or max_parts < 2:
        return None
    frame = len(render("x")) - 1 + len(_NUMBER.format(n=max_parts, total=max_parts))
    room = limit * profile.page_chars - frame
    if room < profile.page_chars // 2:
        return None
    texts = split_text(body, room)
    if not 2 <= len(texts) <= max_parts:
        return None
    parts = [(t, number(render(t), i, len(texts))) for i, t in enumerate(texts, start=1)]
    if any(count_pages(r, profile.page_chars) > limit for _, r in parts):
        return None
    return parts


def splittable(decision: Decision) -> bool:
    """Only the length stands in the way: nothing else returns or holds the letter."""
    blocking = [f for f in decision.findings if f.severity in ("hold", "return")]
    return bool(blocking) and all(f.key == _SPLIT_CODE for f in blocking)


def as_split(decision: Decision, parts: int) -> Decision:
    """The decision once split: the length finding stays on record, as information."""
    findings = tuple(
        replace(f, severity="info", reason_organizer=f"split into {parts} letters: "
                + f.reason_organizer) if f.key == _SPLIT_CODE else f
        for f in decision.findings)
    return Decision.of(findings)


def add_parts(session: Session, letter: Letter, parts: list[tuple[str, str]],
              profile: ProviderProfile, reply_ordered: bool, state: S) -> list[Letter]:
    """The letter becomes part 1 and the others are added in `state` (READY, or DESK on a
    human-carried route), each its own letter: its own public id, so its own idempotency
    key and one charge. Returns all parts in order; the caller (actions.split) moves part 1.
    Photos stay with part 1 (the caller stored them on the letter)."""
    total = len(parts)
    letters = [letter]
    for _ in range(2, total + 1):
        part = Letter(public_id=new_public_id(), inbound_id=None, state=state,
                      part_of_id=letter.id, prisoner_id=letter.prisoner_id,
                      provider=letter.provider, service=letter.service,
                      sender_sealed=letter.sender_sealed,
                      sender_hash=letter.sender_hash, writer_name=letter.writer_name,
                      subject=letter.subject, findings=letter.findings,
                      # Each part is paid: it counts for the campaign's spend and budget.
                      campaign_id=letter.campaign_id, evening_id=letter.evening_id)
        session.add(part)
        letters.append(part)
    session.flush()
    for n, (part, (text, rendered)) in enumerate(zip(letters, parts, strict=True), start=1):
        part.part_no, part.parts, part.body, part.rendered = n, total, text, rendered
        q = quote(rendered, part.photos or 0, reply_ordered, profile)
        part.pages, part.price, part.currency = q.pages, q.amount, q.currency
        part.next_attempt_at = None
        if part is not letter:
            session.add(LetterEvent(letter_id=part.id, from_state=None, to_state=state,
                                    at=utcnow(), note=f"part {n}/{total} of letter #{letter.id}",
                                    reason_code=Reason.SPLIT))
    return letters


def renderer(prisoner: Prisoner, adapter: str, writer_name: str):
    return lambda text: render_letter(adapter, prisoner=prisoner,
                                      writer_name=writer_name, body=text)
