"""Group postcards: the short greetings of a campaign or a letter evening to one prisoner,
sent together as one letter, paid once.

Why: at an evening thirty people write three lines each to the same person. As thirty
letters that is thirty paid pages, each mostly empty; as one postcard it is one or two.

Which letters are greetings (`is_greeting`): in a campaign or an evening whose `postcards`
flag is on (on by default for evenings, where a room writes greetings at once; off for
campaigns, whose writers may expect a letter of their own), a body of at most
GATEWAY_POSTCARD_MAX_CHARS characters, to one named prisoner (a letter "to anyone" is a
letter: it is spread fairly like every other), without photos, on a route with an API (the
desk and the post carry letters one by one). A writer who wants a letter of their own
writes more than the limit.

A greeting passes every check on its own, exactly as a letter does; only then, instead of
READY, it moves to GATHERED (actions.gather) and joins its prisoner's open postcard for
that campaign or evening. A greeting held for a person does not hold the postcard; approved
before the postcard closes, it joins it; approved after, it joins the next one (a new
postcard opens for it, and goes when its window ends like any other).

Closing (actions.close_postcard): when the window after the first greeting ends
(GATEWAY_POSTCARD_WINDOW_MINUTES; a beat task, `close_due`), when the next greeting would
not fit in the pages (GATEWAY_POSTCARD_MAX_PAGES, or the service's or facility's own lower
limit: then that postcard closes and the greeting opens the next), or when an organizer
closes it (the campaign or evening page, `gateway postcards close`). The postcard becomes
one letter in READY, with its own public id, submitted through the same claim, attempt and
record path as any letter: exactly once, nothing lost, the chaos tests cover it. When it is
SUBMITTED, each greeting moves to SUBMITTED and its writer gets their own "sent" notice;
its reply scan is forwarded to each writer alone (replies/intake.py); a censored, refused
or undelivered postcard is told to each writer in plain words. A refused postcard waits in
FAILED for a person like any letter, its greetings with it; a discarded one leaves its
greetings HELD for a person (approved, they join the next postcard), never stuck.

The prisoner reads each greeting signed with its writer's first name or pseudonym (the
first word of writer_name: never a surname, never an address), under a short header naming
the campaign or evening and the organization (templates/letters/postcard.txt.j2).

Money: each greeting is priced as its own letter when checked (its `price` then cleared:
it is not paid on its own); the postcard keeps that sum (`own_letters_rub`) beside its own
price, and the saving is the difference (`savings`).

The pure parts (is_greeting, signature, block, fits, saving) are at the top; the rest
reads and writes the postcards table for actions.py and the beat task."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.formatting import is_signed
from gateway.models import Campaign, Evening, Letter, Postcard, Prisoner, utcnow
from gateway.providers.catalogue import FacilityLimits
from gateway.providers.profiles import ProviderProfile
from gateway.states import LetterState as S
from gateway.templating import render_text

SEPARATOR = "\n\n"
NAMELESS = "Друг"
# On a greeting's findings: an approval after a hold gathers it too (actions.approve).
FINDING = {"rule": "postcard", "code": "greeting", "severity": "info", "passages": [],
           "spans": [], "reason_ru": "", "reason_en": "", "suggestion": "",
           "reason_organizer": "a short greeting: it goes with the prisoner's postcard"}


def marked(findings) -> bool:
    return any(f.get("rule") == "postcard" for f in findings or ())


# -- pure ------------------------------------------------------------------------------------

def is_greeting(body: str, *, photos: int, anyone: bool, gathers: bool,
                human_carried: bool, max_chars: int) -> bool:
    """Short, to one named prisoner, no photos, in a campaign or evening that gathers."""
    return (gathers and not anyone and photos == 0 and not human_carried
            and 0 < len(body.strip()) <= max_chars)


def signature(writer_name: str | None) -> str:
    """The first word of the name the prison may see: a first name or a pseudonym."""
    words = (writer_name or "").split()
    word = words[0] if words else ""
    if not word or "@" in word or not any(ch.isalpha() for ch in word):
        return NAMELESS
    return word[:40]


def block(body: str, writer_name: str | None) -> str:
    """One greeting as the prisoner reads it: the words, then the signer's name (unless
    the greeting already ends with it)."""
    body = body.strip()
    name = signature(writer_name)
    return body if is_signed(body, name) else f"{body}\n— {name}"


def page_limit(max_pages: int, profile: ProviderProfile,
               facility: FacilityLimits = FacilityLimits()) -> int:  # noqa: B008
    limits = [x for x in (max_pages, profile.max_pages, facility.max_pages) if x]
    return min(limits)


def fits(frame_chars: int, chars: int, greetings: int, new_block: int, *, page_chars: int,
         pages: int) -> bool:
    """Would one more greeting keep the postcard within `pages`? `chars` is the greetings
    so far, `frame_chars` the header and closing around them. take_place asks the same in
    its UPDATE, so that the test and the count are one step."""
    total = frame_chars + chars + new_block + len(SEPARATOR) * greetings
    return max(1, -(-total // page_chars)) <= pages  # pricing.count_pages, on a length


def saving(own_letter_prices: Iterable[Decimal], postcard_price: Decimal) -> Decimal:
    """What the greetings would have cost as a letter each, less what the postcard costs."""
    return sum((Decimal(p) for p in own_letter_prices), Decimal(0)) - Decimal(postcard_price)


def compose(prisoner: Prisoner, blocks: list[str], *, occasion: str, org_name: str) -> str:
    text = render_text("letters/postcard.txt.j2", prisoner=prisoner, occasion=occasion,
                       org_name=org_name, greetings=SEPARATOR.join(blocks))
    return text.strip() + "\n"


def frame_chars(prisoner: Prisoner, occasion: str, org_name: str) -> int:
    return len(compose(prisoner, [], occasion=occasion, org_name=org_name))


def frame_for(session: Session, letter: Letter, org_name: str) -> int:
    """frame_chars for the letter's postcard, remembered for the session: a batch of an
    evening's greetings renders each prisoner's header once, not once a greeting."""
    memo = session.info.setdefault("postcard_frames", {})
    key = (letter.prisoner_id, letter.campaign_id, letter.evening_id, org_name)
    if key not in memo:
        prisoner = letter.prisoner or session.get(Prisoner, letter.prisoner_id)
        memo[key] = frame_chars(prisoner, occasion(session, letter.campaign_id,
                                                   letter.evening_id), org_name)
    return memo[key]


# -- rows ------------------------------------------------------------------------------------

def gathers(session: Session, campaign_id: int | None, evening_id: int | None) -> bool:
    """An evening decides for its letters; otherwise their campaign."""
    if evening_id is not None:
        return bool(session.scalar(select(Evening.postcards).where(Evening.id == evening_id)))
    if campaign_id is not None:
        return bool(session.scalar(select(Campaign.postcards).where(Campaign.id == campaign_id)))
    return False


def occasion(session: Session, campaign_id: int | None, evening_id: int | None) -> str:
    """What the header names: the evening (city, date) or the campaign's title."""
    if evening_id is not None:
        evening = session.get(Evening, evening_id)
        if evening is not None:
            when = f"{evening.held_on.day:02d}.{evening.held_on.month:02d}.{evening.held_on.year}"
            return f"вечер писем, {evening.city}, {when}"
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is not None:
            return campaign.title
    return ""


def open_postcard(session: Session, letter: Letter, route) -> Postcard | None:
    return session.scalar(select(Postcard).where(
        Postcard.prisoner_id == letter.prisoner_id, Postcard.closed_at.is_(None),
        Postcard.campaign_id.is_(None) if letter.campaign_id is None
        else Postcard.campaign_id == letter.campaign_id,
        Postcard.evening_id.is_(None) if letter.evening_id is None
        else Postcard.evening_id == letter.evening_id,
        Postcard.service == route.service).order_by(Postcard.id).limit(1))


def new_postcard(session: Session, letter: Letter, route, settings) -> Postcard:
    now = utcnow()
    postcard = Postcard(prisoner_id=letter.prisoner_id, campaign_id=letter.campaign_id,
                        evening_id=letter.evening_id, provider=route.adapter,
                        service=route.service, opened_at=now,
                        closes_at=now + timedelta(minutes=settings.postcard_window_minutes),
                        greetings=0, chars=0, own_letters_rub=Decimal(0))
    session.add(postcard)
    session.flush()
    return postcard


def take_place(session: Session, postcard: Postcard, chars: int, price: Decimal | None,
               room: int) -> bool:
    """Count the greeting in, by one UPDATE that only an open postcard with room for it
    takes (`room`: the characters its pages hold, less the header and closing). The test
    and the count are one statement, so two workers gathering at once cannot overfill a
    page; it locks the row, so a postcard being closed at the same moment either waits for
    this greeting or has closed first. False: closed, or full (the caller closes it and
    opens the next). A first greeting always fits (it is far shorter than a page)."""
    done = session.execute(
        update(Postcard).where(
            Postcard.id == postcard.id, Postcard.closed_at.is_(None),
            (Postcard.greetings == 0)
            | (Postcard.chars + len(SEPARATOR) * Postcard.greetings + chars <= room))
        .values(greetings=Postcard.greetings + 1, chars=Postcard.chars + chars,
                own_letters_rub=Postcard.own_letters_rub + (price or Decimal(0)))
        .execution_options(synchronize_session=False))
    return done.rowcount == 1


def mark_closed(session: Session, postcard_id: int, actor: str) -> bool:
    """Compare-and-set: one closer wins."""
    done = session.execute(
        update(Postcard).where(Postcard.id == postcard_id, Postcard.closed_at.is_(None))
        .values(closed_at=utcnow(), closed_by=actor)
        .execution_options(synchronize_session=False))
    return done.rowcount == 1


def gathered(session: Session, postcard_id: int) -> list[Letter]:
    return list(session.scalars(select(Letter).where(
        Letter.postcard_id == postcard_id, Letter.state == S.GATHERED).order_by(Letter.id)))


def greetings_of(session: Session, postcard_letter_ids: list[int],
                 states: Iterable[S]) -> dict[int, list[Letter]]:
    """{postcard letter id: its greetings in these states}, in one query."""
    if not postcard_letter_ids:
        return {}
    found: dict[int, list[Letter]] = {}
    for letter_id, greeting in session.execute(
            select(Postcard.letter_id, Letter).join(Letter, Letter.postcard_id == Postcard.id)
            .where(Postcard.letter_id.in_(postcard_letter_ids),
                   Letter.state.in_([str(s) for s in states])).order_by(Letter.id)).all():
        found.setdefault(letter_id, []).append(greeting)
    return found


def postcard_of(session: Session, letter: Letter) -> Postcard | None:
    """The postcard whose letter this is (None for any other letter)."""
    return session.scalar(select(Postcard).where(Postcard.letter_id == letter.id))


def due(session: Session, now: datetime | None = None, limit: int = 200) -> list[int]:
    return list(session.scalars(select(Postcard.id).where(
        Postcard.closed_at.is_(None), Postcard.closes_at <= (now or utcnow()))
        .order_by(Postcard.closes_at).limit(limit)))


def close_due(session: Session, settings, now: datetime | None = None) -> list[int]:
    """Close every postcard whose window has ended; the ids of the letters made, for the
    caller to submit after its commit (the sweeper submits them too: they are due now)."""
    from gateway import actions  # the outcome lives there; this module only reads rows
    made = [actions.close_postcard(session, settings, pid, actor="system",
                                   why="its window ended") for pid in due(session, now)]
    return [m.id for m in made if m is not None]


def open_ids(session: Session, *, campaign_id: int | None = None,
             evening_id: int | None = None) -> list[int]:
    scope = Postcard.evening_id == evening_id if evening_id is not None \
        else Postcard.campaign_id == campaign_id
    return list(session.scalars(select(Postcard.id).where(scope, Postcard.closed_at.is_(None))
                                .order_by(Postcard.id)))


@dataclass(frozen=True)
class Savings:
    postcards: int  # closed, with a letter
    open: int
    greetings: int
    own_letters_rub: Decimal  # the greetings as a letter each
    postcards_rub: Decimal  # what the postcards cost
    pages: int

    @property
    def saved_rub(self) -> Decimal:
        return self.own_letters_rub - self.postcards_rub


def savings(session: Session, *, campaign_id: int | None = None,
            evening_id: int | None = None) -> Savings:
    """The money the campaign's or evening's postcards saved (closed postcards only: an
    open one has no price yet)."""
    scope = Postcard.evening_id == evening_id if evening_id is not None \
        else Postcard.campaign_id == campaign_id
    closed, greetings, own, paid, pages = session.execute(
        select(func.count(), func.coalesce(func.sum(Postcard.greetings), 0),
               func.coalesce(func.sum(Postcard.own_letters_rub), 0),
               func.coalesce(func.sum(Postcard.price_rub), 0),
               func.coalesce(func.sum(Postcard.pages), 0))
        .where(scope, Postcard.letter_id.is_not(None))).one()
    still = session.scalar(select(func.count()).where(scope, Postcard.closed_at.is_(None)))
    return Savings(closed, still or 0, int(greetings), Decimal(own), Decimal(paid), int(pages))
