"""The prisoner directory: CSV import that updates in place (keyed by the short code)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import get_settings
from gateway.models import Prisoner

COLUMNS = ("code", "last_name", "first_name", "middle_name", "birth_year", "region",
           "facility_name", "facility_id", "provider")
# birth_date: 1991-03-14 or 14.03.1991. status: as the public lists write it ("в
# заключении", "этап", "освобождена", "умер") or the gateway's own names. A file without
# the column, or an empty cell, keeps what the directory has.
OPTIONAL = ("birth_date", "status")
REQUIRED = ("code", "last_name", "first_name", "facility_name", "facility_id")

# The gateway's statuses: in_custody and moved can be written to (moved: held until the
# new facility is known), released gets no paid letter, the rest wait for a person.
STATUSES = ("in_custody", "moved", "released", "house_arrest", "deceased", "unknown", "retired")
# Stems of the words public lists (OVD-Info, Memorial, support groups) use, ё read as е,
# either gender: "освобожден", "освобождена", "вышла на свободу".
_STATUS_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("deceased", ("умер", "скончал", "погиб", "смерть", "deceased", "died", "dead")),
    # politzek.org: "лишен/а свободы" (in custody) and "не лишен/а свободы" (not).
    ("released", ("освобожд", "на свобод", "вышел", "вышла", "отпущен", "не лишен",
                  "released", "free")),
    ("house_arrest", ("домашн", "house arrest")),
    ("moved", ("этап", "переведен", "перевод", "moved", "transfer")),
    ("in_custody", ("в заключении", "заключен", "лишен", "под стражей", "сизо", "в колонии",
                    "отбывает", "арестован", "осужден", "custody")),
    ("unknown", ("неизвест", "нет данных", "нет информац", "уточняется", "unknown")),
)


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    unchanged: int
    errors: tuple[str, ...]


def parse_birth_date(raw: str) -> date:
    """ISO (1991-03-14) or as Russian lists write it (14.03.1991)."""
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"birth_date {raw!r} is not a date like 1991-03-14 or 14.03.1991")


def parse_status(raw: str) -> str:
    """The gateway's status for a list's wording; ValueError for what it cannot tell."""
    text = " ".join(raw.lower().replace("ё", "е").replace("_", " ").split())
    if text.replace(" ", "_") in STATUSES:
        return text.replace(" ", "_")
    for status, stems in _STATUS_WORDS:
        if any(stem in text for stem in stems):
            return status
    raise ValueError(f"status {raw!r} is not one the gateway knows (in custody, moved, "
                     "released, house arrest, deceased, unknown)")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def import_rows(session: Session, rows: list[dict[str, str]]) -> ImportReport:
    added = updated = unchanged = 0
    errors: list[str] = []
    existing = {p.code: p for p in session.scalars(select(Prisoner))}
    for line, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        missing = [c for c in REQUIRED if not row.get(c)]
        if missing:
            errors.append(f"line {line}: missing {', '.join(missing)}")
            continue
        try:
            birth_year = int(row["birth_year"]) if row.get("birth_year") else None
        except ValueError:
            errors.append(f"line {line}: birth_year {row['birth_year']!r} is not a year")
            continue
        birth_date = None
        if row.get("birth_date"):
            try:
                birth_date = parse_birth_date(row["birth_date"])
            except ValueError as exc:
                errors.append(f"line {line}: {exc}")
                continue
            if birth_year is not None and birth_year != birth_date.year:
                errors.append(f"line {line}: birth_date {row['birth_date']} is not in "
                              f"birth_year {birth_year}")
                continue
            birth_year = birth_date.year
        values = {
            "last_name": row["last_name"], "first_name": row["first_name"],
            "middle_name": row.get("middle_name") or None, "birth_year": birth_year,
            "region": row.get("region", ""), "facility_name": row["facility_name"],
            "facility_id": row["facility_id"], "provider": (row.get("provider") or "").strip().lower()
            or get_settings().default_provider,
        }
        if "birth_date" in row:  # only a file with the column may set or clear it
            values["birth_date"] = birth_date
        if row.get("status"):
            try:
                values["status"] = parse_status(row["status"])
            except ValueError as exc:
                errors.append(f"line {line}: {exc}")
                continue
        prisoner = existing.get(row["code"])
        if prisoner is None:
            prisoner = Prisoner(code=row["code"], **values)
            session.add(prisoner)
            existing[row["code"]] = prisoner
            added += 1
        elif any(getattr(prisoner, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(prisoner, k, v)
            updated += 1
        else:
            unchanged += 1
    return ImportReport(added, updated, unchanged, tuple(errors))


DEMO_CSV = Path(__file__).parent / "demo" / "prisoners.csv"


@dataclass(frozen=True)
class Birthday:
    prisoner_id: int
    code: str
    name: str
    facility_name: str
    on: date  # the coming birthday
    turns: int

    @property
    def in_days(self) -> int:
        return (self.on - date.today()).days


def _birthday_in(born: date, year: int) -> date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: marked on 1 March
        return date(year, 3, 1)


def upcoming_birthdays(session: Session, today: date | None = None,
                       days: int = 14) -> list[Birthday]:
    """Prisoners in custody whose birthday falls within `days` from today, soonest first.
    Reads only the few columns of prisoners with a known date (a directory is small)."""
    today = today or date.today()
    found = []
    for pid, code, last, first, middle, facility, born in session.execute(
            select(Prisoner.id, Prisoner.code, Prisoner.last_name, Prisoner.first_name,
                   Prisoner.middle_name, Prisoner.facility_name, Prisoner.birth_date)
            .where(Prisoner.birth_date.is_not(None), Prisoner.status != "retired")):
        on = _birthday_in(born, today.year)
        if on < today:
            on = _birthday_in(born, today.year + 1)
        if (on - today).days <= days:
            name = " ".join(p for p in (last, first, middle) if p)
            found.append(Birthday(pid, code, name, facility, on, on.year - born.year))
    return sorted(found, key=lambda b: (b.on, b.name))
