"""Which column of a list holds which field: from a small TOML file, or guessed from the
headers the groups use (ФИО, Дата рождения, Где сидит…)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("code", "full_name", "last_name", "first_name", "middle_name", "birth_date",
          "birth_year", "gender", "facility", "facility_id", "region", "status",
          "interests", "interest_tags", "writer_note", "wants_letters")

# Headers seen in the published lists (docs/shared research, section 3), folded.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "code": ("code", "код", "id"),
    "full_name": ("фио", "++фио", "name", "full name", "фамилия имя отчество", "фио:"),
    "last_name": ("last_name", "фамилия"),
    "first_name": ("first_name", "имя"),
    "middle_name": ("middle_name", "отчество"),
    "birth_date": ("birth_date", "дата рождения", "date_of_birth", "родился", "др"),
    "birth_year": ("birth_year", "год рождения", "год рождения:"),
    "gender": ("gender", "пол"),
    "facility": ("facility", "facility_name", "адрес", "адрес для писем", "address_for_letters",
                 "где находится", "место нахождения", "где сидит", "учреждение",
                 "текущее местонахождение:", "address"),
    "facility_id": ("facility_id",),
    "region": ("region", "регион"),
    "status": ("status", "статус"),
    "interests": ("interests", "интересы", "увлечения", "о чём писать", "что читать"),
    "interest_tags": ("tags", "теги", "interest_tags"),
    "writer_note": ("note", "writer_note", "примечание", "заметка", "для пишущих"),
    "wants_letters": ("wants_letters", "can_write", "можно писать", "ждёт писем",
                      "ждет писем"),
}


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]  # field -> the header as written in the file
    month_first: bool = False  # dates like 5/12/1985 are M/D/YYYY (OVD-Info's export)
    provider: str | None = None  # the provider the list's facilities are matched in
    defaults: dict[str, str] = field(default_factory=dict)
    # Read when the field's column is empty: OVD-Info keeps "Колония (актуальная)" and
    # "СИЗО (актуальное)" apart, and only one is filled.
    also: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def cell(self, row: dict[str, str], name: str) -> str:
        column = self.columns.get(name)
        if not column:
            return self.defaults.get(name, "")
        value = row.get(column, "")
        for other in self.also.get(name, ()):
            if value:
                break
            value = row.get(other, "")
        return value

    def check(self, header: tuple[str, ...]) -> None:
        used = [*self.columns.values(), *(c for cs in self.also.values() for c in cs)]
        missing = [c for c in used if c not in header]
        if missing:
            raise MappingError(f"the file has no column {', '.join(map(repr, missing))} "
                               f"(its columns: {', '.join(header)})")
        has_name = "full_name" in self.columns or {"last_name", "first_name"} <= set(self.columns)
        if not has_name:
            raise MappingError("no column for the name (ФИО, or Фамилия and Имя)")
        if not {"facility", "facility_id"} & set(self.columns):
            raise MappingError("no column for the facility (address or facility_id)")


def _fold(header: str) -> str:
    return " ".join(header.lower().replace("ё", "е").split())


def guess(header: tuple[str, ...]) -> Mapping:
    columns: dict[str, str] = {}
    folded = {_fold(h): h for h in header}
    for name, words in _SYNONYMS.items():
        for word in words:
            if (hit := folded.get(_fold(word))) and hit not in columns.values():
                columns[name] = hit
                break
    # "Колония (актуальная)" / "СИЗО (актуальное)": the OVD-Info export's two places, the
    # colony first (a sentence comes after the remand prison).
    also: dict[str, tuple[str, ...]] = {}
    if "facility" not in columns:
        places = sorted((h for h in header if _fold(h).startswith(("колония", "сизо"))),
                        key=lambda h: not _fold(h).startswith("колония"))
        if places:
            columns["facility"], also["facility"] = places[0], tuple(places[1:])
    return Mapping(columns, also=also)


def load(path: Path, header: tuple[str, ...] | None = None) -> Mapping:
    """A mapping file:

        month_first = true          # optional
        provider = "http"           # optional
        [columns]
        full_name = "ФИО"
        birth_date = "Дата рождения"
        facility = ["Колония (актуальная)", "СИЗО (актуальное)"]  # first non-empty
    Fields the file leaves out are guessed from the header when one is given."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"mapping file {path}: {exc}") from exc
    columns: dict = dict(data.get("columns", {}))
    also: dict[str, tuple[str, ...]] = {}
    for name, value in list(columns.items()):
        if isinstance(value, list):  # the first non-empty of several columns
            if not value or not all(isinstance(v, str) for v in value):
                raise MappingError(f"mapping file {path}: {name} must name one column or "
                                   "a list of columns")
            columns[name], also[name] = value[0], tuple(value[1:])
    unknown = set(columns) - set(FIELDS)
    if unknown:
        raise MappingError(f"mapping file {path}: unknown field(s) {', '.join(sorted(unknown))};"
                           f" known: {', '.join(FIELDS)}")
    guessed = guess(header).columns if header else {}
    used = set(columns.values())
    for name, column in guessed.items():
        if name not in columns and column not in used:
            columns[name] = column
    return Mapping(columns, month_first=bool(data.get("month_first", False)),
                   provider=data.get("provider"), defaults=dict(data.get("defaults", {})),
                   also=also)
