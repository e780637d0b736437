"""What importing a list would change, worked out before anything is written: pure over
the table, the mapping, the catalogue and a snapshot of the directory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.directory import parse_status
from gateway.directory_import.facilities import Catalogue, CatalogueEntry, Match, is_placeholder
from gateway.directory_import.mapping import Mapping
from gateway.directory_import.readers import Table
from gateway.directory_import.values import (
    name_key,
    parse_birth,
    parse_gender,
    parse_tags,
    parse_yes_no,
    split_full_name,
)


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str
    label: str = "row"

    def __str__(self) -> str:
        return f"{self.label} {self.row}, column {self.column!r}: {self.message}"


@dataclass(frozen=True)
class Existing:
    """The part of a directory row the plan compares against."""

    id: int
    code: str
    name: str
    birth_year: int | None
    facility_id: str
    facility_name: str
    status: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Record:
    row: int
    name: str
    values: dict[str, Any]  # Prisoner columns the list sets
    code: str | None = None


@dataclass(frozen=True)
class Transfer:
    code: str
    name: str
    from_facility: str
    to_facility: str
    to_facility_id: str


@dataclass(frozen=True)
class ToConfirm:
    row: int
    name: str
    written: str  # the facility as the list wrote it
    why: str
    suggestions: tuple[CatalogueEntry, ...]
    code: str | None  # the prisoner it is, if already in the directory


@dataclass
class Plan:
    errors: list[RowError] = field(default_factory=list)
    new: list[Record] = field(default_factory=list)
    updated: list[tuple[Existing, dict[str, Any]]] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    absent: list[Existing] = field(default_factory=list)
    to_confirm: list[ToConfirm] = field(default_factory=list)
    unchanged: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


# The columns a list may set, and how each cell is read.
_READERS: dict[str, Callable[[str], Any]] = {
    "gender": parse_gender,
    "interests": lambda s: s or None,
    "interest_tags": lambda s: parse_tags(s) or None,
    "writer_note": lambda s: s or None,
    "region": lambda s: s,
}


def make_plan(table: Table, mapping: Mapping, catalogue: Catalogue,
              existing: Iterable[Existing], *, provider: str,
              confirmed: dict[int, str] | None = None, full_list: bool = True,
              progress: Callable[[int], None] | None = None) -> Plan:
    """`confirmed` maps a row number to the catalogue id a person chose for it."""
    confirmed = confirmed or {}
    plan = Plan(rows=len(table.rows))
    existing = list(existing)
    by_code = {e.code: e for e in existing}
    by_key = {name_key(*_split(e.name), e.birth_year): e for e in existing}
    by_name: dict[str, list[Existing]] = {}
    for e in existing:
        by_name.setdefault(name_key(*_split(e.name), None), []).append(e)
    seen: dict[int, int] = {}  # prisoner id -> the row that named them
    new_rows: dict[str, int] = {}  # a new person's code or name key -> their row
    for n, (row_no, row) in enumerate(table.rows, start=1):
        if progress and n % 100 == 0:
            progress(100)
        try:
            record = _record(row_no, row, mapping)
        except _CellError as exc:
            plan.errors.append(RowError(row_no, mapping.columns.get(exc.field, exc.field),
                                        str(exc), table.row_label))
            continue
        if record is None:  # an empty line in the middle of a sheet
            continue
        values = record.values
        year = values.get("birth_year")
        # A code names the prisoner; only a list without codes is matched by name and year.
        who = by_code.get(record.code) if record.code \
            else by_key.get(name_key(*_split(record.name), year))
        if who is None and not record.code:
            namesakes = by_name.get(name_key(*_split(record.name), None), [])
            if len(namesakes) == 1 and (year is None or namesakes[0].birth_year is None):
                who = namesakes[0]
        if who is not None:
            if who.id in seen:
                plan.errors.append(RowError(row_no, mapping.columns.get("full_name", "name"),
                                            f"{record.name} is also {table.row_label} "
                                            f"{seen[who.id]}", table.row_label))
                continue
            seen[who.id] = row_no
        facility = _facility(row_no, row, mapping, catalogue, confirmed, record, who, plan)
        if facility is not None:
            values["facility_id"], values["facility_name"] = facility.facility_id, facility.name
            if who is not None and who.status == "moved":
                values.setdefault("status", "in_custody")  # in transit before; placed now
            values.setdefault("region", facility.region)
            values["provider"] = facility.provider
        elif who is None:
            continue  # a new person waits in the confirm list until their facility is known
        if who is None:
            key = record.code or name_key(*_split(record.name), year)
            if key in new_rows:  # one new person written twice
                plan.errors.append(RowError(row_no, mapping.columns.get("full_name", "name"),
                                            f"{record.name} is also {table.row_label} "
                                            f"{new_rows[key]}", table.row_label))
                continue
            new_rows[key] = row_no
            plan.new.append(record)
            continue
        changes = {k: v for k, v in values.items() if who.values.get(k) != v}
        if "facility_id" in changes and who.facility_id:
            plan.transfers.append(Transfer(who.code, who.name, who.facility_name,
                                           values["facility_name"], values["facility_id"]))
        if changes:
            plan.updated.append((who, changes))
        else:
            plan.unchanged += 1
    if full_list:
        plan.absent = [e for e in existing if e.id not in seen
                       and e.status not in ("retired", "released", "deceased")]
    if progress:
        progress(len(table.rows) % 100)
    return plan


def _split(name: str) -> tuple[str, str, str | None]:
    parts = name.split(" ")
    return parts[0], (parts[1] if len(parts) > 1 else ""), " ".join(parts[2:]) or None


class _CellError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


def _cell(mapping: Mapping, row: dict[str, str], name: str, parse: Callable[[str], Any]):
    try:
        return parse(mapping.cell(row, name))
    except ValueError as exc:
        raise _CellError(name, str(exc)) from None


def _record(row_no: int, row: dict[str, str], mapping: Mapping) -> Record | None:
    if not any(row.values()):
        return None
    cols = mapping.columns
    born_in_name = ""
    if "full_name" in cols:
        last, first, middle, born_in_name = _cell(mapping, row, "full_name", split_full_name)
    else:
        last, first = mapping.cell(row, "last_name"), mapping.cell(row, "first_name")
        if not last or not first:
            raise _CellError("last_name" if not last else "first_name", "the name is empty")
        middle = mapping.cell(row, "middle_name") or None
    values: dict[str, Any] = {"last_name": last, "first_name": first, "middle_name": middle}
    born: date | None = None
    year: int | None = None
    raw_birth = mapping.cell(row, "birth_date") or born_in_name
    if raw_birth:
        born, year = _cell(mapping, row, "birth_date" if "birth_date" in cols else "full_name",
                           lambda _: parse_birth(raw_birth, month_first=mapping.month_first))
    if mapping.cell(row, "birth_year"):
        _, stated = _cell(mapping, row, "birth_year", parse_birth)
        if year is not None and stated != year:
            raise _CellError("birth_year", f"{stated} is not the year of the birth date "
                             f"({raw_birth})")
        year = stated if year is None else year
    if born is not None or "birth_date" in cols:
        values["birth_date"] = born
    if year is not None or {"birth_date", "birth_year"} & set(cols):
        values["birth_year"] = year
    for name, parse in _READERS.items():
        if name in cols:
            values[name] = _cell(mapping, row, name, parse)
    if "interests" in cols and "interest_tags" not in cols:
        # Lists give interests as "книги, история": the same words serve as tags.
        values["interest_tags"] = parse_tags(values["interests"] or "") or None
    if "wants_letters" in cols and (wants := _cell(mapping, row, "wants_letters",
                                                   parse_yes_no)) is not None:
        values["wants_letters"] = wants
    if mapping.cell(row, "status"):
        values["status"] = _cell(mapping, row, "status", parse_status)
    code = mapping.cell(row, "code") or None
    name = " ".join(p for p in (last, first, middle) if p)
    return Record(row_no, name, values, code)


def _facility(row_no: int, row: dict[str, str], mapping: Mapping, catalogue: Catalogue,
              confirmed: dict[int, str], record: Record, who: Existing | None,
              plan: Plan) -> CatalogueEntry | None:
    if row_no in confirmed:
        entry = catalogue.get(confirmed[row_no])
        if entry is None:
            plan.errors.append(RowError(row_no, mapping.columns.get("facility", "facility"),
                                        f"{confirmed[row_no]!r} is not in the catalogue"))
        return entry
    if facility_id := mapping.cell(row, "facility_id"):
        entry = catalogue.get(facility_id)
        if entry is None:
            plan.errors.append(RowError(row_no, mapping.columns["facility_id"],
                                        f"{facility_id!r} is not in the catalogue"))
        return entry
    written = mapping.cell(row, "facility")
    if is_placeholder(written):
        # "Этап": in transit. Someone known keeps their facility and is marked moved.
        if who is not None and written.strip():
            record.values.setdefault("status", "moved")
        elif who is None:
            plan.to_confirm.append(ToConfirm(row_no, record.name, written,
                                             "the list gives no facility", (), None))
        return None
    match: Match = catalogue.match(written)
    if match.certain:
        return match.entry
    if who is not None and who.facility_id in {s.facility_id for s in match.suggestions[:1]}:
        return catalogue.get(who.facility_id)  # the list's spelling of where they already are
    plan.to_confirm.append(ToConfirm(row_no, record.name, written, match.why,
                                     match.suggestions, who.code if who else None))
    return None
