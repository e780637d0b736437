"""A list file into (header, rows) of text, whatever shape the group published it in."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from charset_normalizer import from_bytes


class ListFileError(ValueError):
    """The file cannot be read as a list at all (before any row is looked at)."""


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]  # (row number as the organizer sees it, cells)
    row_label: str = "row"  # "row" in a spreadsheet, "item" in JSON


def read_table(path: Path) -> Table:
    return read_bytes(path.name, path.read_bytes())


def read_bytes(filename: str, data: bytes) -> Table:
    """By the file's name: .xlsx, .json, anything else as CSV (an upload has no path)."""
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx(data)
    if suffix == ".json":
        return _json(data)
    return _csv(data)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; otherwise the likeliest Cyrillic code page
    (Excel on Russian Windows saves CSV as cp1251)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=["cp1251", "koi8_r", "cp866", "mac_cyrillic"]).best()
    if best is None:
        raise ListFileError("the file is neither UTF-8 nor a Cyrillic code page")
    return str(best)


def _csv(data: bytes) -> Table:
    text = decode(data)
    sample = "\n".join(text.splitlines()[:20])
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=";,\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    return _table(rows)


def _table(rows: list[list[str]], label: str = "row") -> Table:
    """The header is the first row with two or more cells (a sheet often starts with a
    title line); rows keep the numbers the spreadsheet shows, blank ones skipped."""
    numbered = [(n, r) for n, r in enumerate(rows, start=1)
                if any((c or "").strip() for c in r)]
    start = next((i for i, (_, r) in enumerate(numbered)
                  if sum(1 for c in r if (c or "").strip()) >= 2), None)
    if start is None:
        raise ListFileError("the file has no header row")
    header = tuple(" ".join((h or "").split()) for h in numbered[start][1])
    out = [(n, {h: (cells[i] if i < len(cells) else "").strip()
                for i, h in enumerate(header) if h})
           for n, cells in numbered[start + 1:]]
    return Table(header, tuple(out), label)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a year typed in a number cell
    return str(value)


def _xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException…
        raise ListFileError(f"not a readable XLSX workbook ({type(exc).__name__})") from exc
    try:
        sheet = book.worksheets[0]
        return _table([[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)])
    finally:
        book.close()


def _json(data: bytes) -> Table:
    try:
        doc = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise ListFileError(f"not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(doc, dict):  # {"prisoners": [...]} or {"data": [...]}: the one list inside
        lists = [v for v in doc.values() if isinstance(v, list)]
        doc = lists[0] if len(lists) == 1 else None
    if not isinstance(doc, list) or not all(isinstance(item, dict) for item in doc):
        raise ListFileError("JSON must be a list of objects, one per prisoner")
    header: dict[str, None] = {}
    for item in doc:
        header.update(dict.fromkeys(item))
    rows = tuple((n, {k: _json_cell(item.get(k)) for k in header})
                 for n, item in enumerate(doc, start=1))
    return Table(tuple(header), rows, "item")


def _json_cell(value) -> str:
    if isinstance(value, list):  # interests: ["книги", "история"]
        return ", ".join(_json_cell(v) for v in value)
    if isinstance(value, bool):
        return "да" if value else "нет"
    return _cell(value)
