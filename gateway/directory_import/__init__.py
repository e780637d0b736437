"""Import of the prisoner lists the support groups publish (CSV in any delimiter and
encoding, XLSX, JSON): read → map columns → parse values → match facilities → plan the
changes → apply them in one transaction once a person has seen the plan.

readers.py   a file into a header and rows, whatever its shape
mapping.py   which column holds what (a TOML file, or guessed from the headers)
values.py    names, birth dates, gender, yes/no as people write them
facilities.py  a postal name and address matched to the provider catalogue
plan.py      what a (re-)import changes: new, updated, moved, absent, to confirm
apply.py     the plan written, all or nothing
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.directory_import.apply import catalogue_provider, load_catalogue, snapshot
from gateway.directory_import.mapping import Mapping, guess, load
from gateway.directory_import.plan import Plan, make_plan
from gateway.directory_import.readers import Table, read_table


def prepare(session: Session, path: Path, *, mapping_path: Path | None = None,
            provider: str | None = None, confirmed: dict[int, str] | None = None,
            full_list: bool = True, on_rows: Callable[[int], None] | None = None,
            progress: Callable[[int], None] | None = None,
            settings=None) -> tuple[Table, Mapping, Plan]:
    """Read, map and plan; writes nothing. Raises ListFileError / MappingError for a file
    that cannot be read as a list at all."""
    table = read_table(path)
    mapping = load(mapping_path, table.header) if mapping_path else guess(table.header)
    if on_rows:
        on_rows(len(table.rows))
    return table, mapping, plan_table(session, table, mapping, provider=provider,
                                      confirmed=confirmed, full_list=full_list,
                                      progress=progress, settings=settings)


def plan_table(session: Session, table: Table, mapping: Mapping, *, provider: str | None = None,
               confirmed: dict[int, str] | None = None, full_list: bool = True,
               progress: Callable[[int], None] | None = None, settings=None) -> Plan:
    mapping.check(table.header)
    provider = provider or mapping.provider or catalogue_provider(session, settings)
    return make_plan(table, mapping, load_catalogue(session, provider), snapshot(session),
                     provider=provider, confirmed=confirmed, full_list=full_list,
                     progress=progress)
