"""A plan written to the directory in the caller's one transaction: new prisoners, changes,
transfers (letters not yet paid for are held, and their writers told), and the absent an
organizer confirmed as gone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.directory_import.facilities import Catalogue, CatalogueEntry
from gateway.directory_import.plan import Existing, Plan
from gateway.models import Letter, Prisoner, ProviderFacility
from gateway.states import LetterState as S
from gateway.states import Reason as R

# What the list may set, and so what a re-import compares.
COMPARED = ("last_name", "first_name", "middle_name", "birth_year", "birth_date", "region",
            "facility_id", "facility_name", "provider", "status", "gender", "interests",
            "interest_tags", "writer_note", "wants_letters")
# Waiting to be paid for or typed in: still addressed to the facility the person left.
IN_FLIGHT = (S.READY, S.DESK)
MOVED_RU = ("Адресата недавно перевели в другое учреждение. Прежде чем отправить письмо, "
            "мы проверим новый адрес.")
MOVED_EN = ("The addressee was recently moved to another facility. We will check the new "
            "address before sending the letter.")


@dataclass(frozen=True)
class ApplyReport:
    added: int
    updated: int
    moved: int
    retired: int
    held_letters: int
    notices: tuple[int, ...]  # outbound ids queued (the sweeper sends them)


def snapshot(session: Session) -> list[Existing]:
    return [Existing(p.id, p.code, p.full_name, p.birth_year, p.facility_id, p.facility_name,
                     p.status, {k: getattr(p, k) for k in COMPARED})
            for p in session.scalars(select(Prisoner).order_by(Prisoner.id))]


def load_catalogue(session: Session, provider: str) -> Catalogue:
    return Catalogue([CatalogueEntry(f.provider, f.facility_id, f.name, f.region,
                                     f.postal_address)
                      for f in session.scalars(select(ProviderFacility).where(
                          ProviderFacility.provider == provider)
                          .order_by(ProviderFacility.facility_id))])


def catalogue_provider(session: Session, settings=None) -> str:
    """The catalogue a list is matched in when neither the command nor the mapping names
    one: the default service's adapter if it has a stored catalogue; else the only adapter
    that has one; else "http". (The desk has no catalogue of its own: a gateway whose
    default is the desk matches against the catalogue it has synced.)"""
    stored = list(session.scalars(select(ProviderFacility.provider).distinct()
                                  .order_by(ProviderFacility.provider)))
    if settings is not None:
        from gateway.providers.services import UnknownService, route
        try:
            adapter = route(None, settings).adapter
        except UnknownService:
            adapter = None
        if adapter in stored:
            return adapter
    if len(stored) == 1:
        return stored[0]
    return "http"


def _next_codes(session: Session):
    """Short codes for new prisoners (writers put them in the subject): P + a number past
    every number in use."""
    taken = set(session.scalars(select(Prisoner.code)))
    n = max((int(m.group()) for c in taken if (m := re.search(r"\d+", c))), default=100)
    while True:
        n += 1
        if f"P{n}" not in taken:
            yield f"P{n}"


def apply_plan(session: Session, plan: Plan, settings, *, retire: frozenset[str] = frozenset(),
               actor: str = "import", today: date | None = None) -> ApplyReport:
    if not plan.ok:
        raise ValueError("a plan with errors is never applied")
    today = today or date.today()
    codes = _next_codes(session)
    for record in plan.new:
        session.add(Prisoner(code=record.code or next(codes), **record.values))
    moved_ids = {t.code for t in plan.transfers}
    held: list[Letter] = []
    for who, changes in plan.updated:
        prisoner = session.get(Prisoner, who.id)
        for key, value in changes.items():
            setattr(prisoner, key, value)
        if who.code in moved_ids:
            prisoner.moved_at = today
            if prisoner.status == "moved":
                prisoner.status = "in_custody"  # the list says where they are now
            held += _hold_in_flight(session, settings, prisoner, actor)
    unknown = retire - {e.code for e in plan.absent}
    if unknown:
        raise ValueError(f"not absent from the list, so not retired: {', '.join(sorted(unknown))}")
    for e in plan.absent:
        if e.code in retire:  # as the dashboard's "retire": out of the directory's use
            gone = session.get(Prisoner, e.id)
            gone.status, gone.can_receive = "retired", False
    session.flush()
    notices = [mail for _, mails in held for mail in mails]
    return ApplyReport(len(plan.new), len(plan.updated), len(plan.transfers), len(retire),
                       len(held), tuple(notices))


def _hold_in_flight(session: Session, settings, prisoner: Prisoner,
                    actor: str) -> list[tuple[Letter, list[int]]]:
    """The prisoner moved: letters not yet paid for are held (a person checks the address)
    and their writers told. Returns each letter with the notice's mail ids."""
    letters = list(session.scalars(select(Letter).where(
        Letter.prisoner_id == prisoner.id, Letter.state.in_(IN_FLIGHT))
        .with_for_update(of=Letter)))  # its prisoner comes joined: lock only the letters
    finding = {"reason_ru": MOVED_RU, "reason_en": MOVED_EN}
    return [(letter, actions.hold(
        session, settings, letter, code=R.PRISONER_MOVED, actor=actor, findings=[finding],
        note=f"the prisoner moved to {prisoner.facility_name} ({prisoner.facility_id}): "
             "check the address first")) for letter in letters]
