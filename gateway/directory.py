"""The prisoner directory: CSV import that updates in place (keyed by the short code)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Prisoner

COLUMNS = ("code", "last_name", "first_name", "middle_name", "birth_year", "region",
           "facility_name", "facility_id", "provider")
REQUIRED = ("code", "last_name", "first_name", "facility_name", "facility_id")


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    unchanged: int
    errors: tuple[str, ...]


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
        values = {
            "last_name": row["last_name"], "first_name": row["first_name"],
            "middle_name": row.get("middle_name") or None, "birth_year": birth_year,
            "region": row.get("region", ""), "facility_name": row["facility_name"],
            "facility_id": row["facility_id"], "provider": row.get("provider") or "http",
        }
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
