"""Each provider's catalogue of facilities, synced into `provider_facilities`, and the
match of the directory against it: a letter to a facility its provider does not reach is
held with that reason instead of being paid for and refused."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import Prisoner, ProviderFacility, utcnow
from gateway.providers.base import Facility, Provider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    provider: str
    added: int
    updated: int
    removed: int
    total: int  # -1: the sync failed


def store_catalogue(session: Session, provider: str, facilities: list[Facility]) -> SyncReport:
    now = utcnow()
    existing = {f.facility_id: f for f in session.scalars(
        select(ProviderFacility).where(ProviderFacility.provider == provider))}
    added = updated = 0
    seen: set[str] = set()
    for fac in facilities:
        seen.add(fac.id)
        values = {"name": fac.name, "region": fac.region, "postal_address": fac.postal_address,
                  "accepts_photos": fac.accepts_photos, "max_pages": fac.max_pages,
                  "max_photos": fac.max_photos}
        row = existing.get(fac.id)
        if row is None:
            session.add(ProviderFacility(provider=provider, facility_id=fac.id, synced_at=now,
                                         **values))
            added += 1
            continue
        if any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            updated += 1
        row.synced_at = now
    removed = 0
    for facility_id, row in existing.items():
        if facility_id not in seen:
            session.delete(row)
            removed += 1
    return SyncReport(provider, added, updated, removed, len(seen))


def sync_catalogue(session: Session, provider: Provider) -> SyncReport:
    """Fetch the provider's catalogue and store it (the caller commits). An adapter with
    no catalogue of its own (the desk) returns nothing and the stored one is left alone."""
    facilities = provider.facilities()
    if not facilities:
        return SyncReport(provider.name, 0, 0, 0, 0)
    return store_catalogue(session, provider.name, facilities)


def sync_all(session: Session, settings) -> list[SyncReport]:
    """Sync every registered adapter's catalogue (the caller commits). One failing
    provider does not stop the others; its old catalogue stays."""
    from gateway.providers.registry import adapter_names, open_provider

    reports = []
    for name in adapter_names():
        provider = open_provider(name, settings)
        try:
            with session.begin_nested():
                reports.append(sync_catalogue(session, provider))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            reports.append(SyncReport(name, 0, 0, 0, -1))
            log.warning("catalogue sync for %s failed: %r", name, exc)
        finally:
            provider.close()
    return reports


def synced_at(session: Session, provider: str) -> datetime | None:
    return session.scalar(select(func.max(ProviderFacility.synced_at))
                          .where(ProviderFacility.provider == provider))


def is_stale(session: Session, provider: str, max_age_h: float) -> bool:
    at = synced_at(session, provider)
    return at is None or at < utcnow() - timedelta(hours=max_age_h)


def facility(session: Session, provider: str, facility_id: str) -> ProviderFacility | None:
    return session.scalar(select(ProviderFacility).where(
        ProviderFacility.provider == provider, ProviderFacility.facility_id == facility_id))


@dataclass(frozen=True)
class FacilityLimits:
    """What the synced catalogue says one facility takes; the defaults (nothing synced)
    leave only the provider profile's own limits to the checks."""
    reachable: bool = True
    max_pages: int | None = None
    max_photos: int | None = None
    accepts_photos: bool = True

    def draft_fields(self) -> dict:
        """The LetterDraft fields the length, photos and recipient rules read."""
        return {"facility_reachable": self.reachable, "facility_max_pages": self.max_pages,
                "facility_max_photos": self.max_photos,
                "facility_accepts_photos": self.accepts_photos}


def limits_of(row: ProviderFacility | None, synced: bool) -> FacilityLimits:
    if row is None:
        # Missing from a synced catalogue: the provider does not reach it.
        return FacilityLimits(reachable=not synced)
    return FacilityLimits(max_pages=row.max_pages,
                          max_photos=row.max_photos if row.accepts_photos else 0,
                          accepts_photos=row.accepts_photos)


class Catalogues:
    """The synced catalogues, read once per provider (a catalogue is small: a few
    thousand rows at most) and looked up per letter."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, dict[str, ProviderFacility]] = {}

    def limits(self, provider: str, facility_id: str) -> FacilityLimits:
        if provider not in self._rows:
            # No autoflush: a read mid-batch would write the letters decided so far one by
            # one, not together at commit (tests/intake/test_check_batch.py counts that).
            with self.session.no_autoflush:
                self._rows[provider] = {r.facility_id: r for r in self.session.scalars(
                    select(ProviderFacility).where(ProviderFacility.provider == provider))}
        rows = self._rows[provider]
        return limits_of(rows.get(facility_id), synced=bool(rows))


def reaches(session: Session, provider: str, facility_id: str) -> bool | None:
    """True/False against the synced catalogue; None when none was ever synced."""
    if synced_at(session, provider) is None:
        return None
    return facility(session, provider, facility_id) is not None


@dataclass(frozen=True)
class Unreached:
    prisoner_code: str
    prisoner_name: str
    provider: str
    facility_id: str
    facility_name: str


def unreached(session: Session) -> list[Unreached]:
    """Directory entries whose facility id their provider's synced catalogue lacks."""
    synced = set(session.scalars(select(ProviderFacility.provider).distinct()))
    known = {(p, f) for p, f in session.execute(
        select(ProviderFacility.provider, ProviderFacility.facility_id))}
    return [Unreached(p.code, p.full_name, p.provider, p.facility_id, p.facility_name)
            for p in session.scalars(select(Prisoner).where(Prisoner.status != "retired")
                                     .order_by(Prisoner.code))
            if p.provider in synced and (p.provider, p.facility_id) not in known]
