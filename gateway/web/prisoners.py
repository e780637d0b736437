"""The prisoner directory: search, letter counts, add / edit / retire, CSV import with a
preview of exactly what would change (the import runs, is inspected, and rolled back)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import flask
from flask_babel import gettext as _
from sqlalchemy import func, inspect, or_, select
from sqlalchemy.orm import Session

from gateway.directory import (
    COLUMNS,
    OPTIONAL,
    REQUIRED,
    ImportReport,
    import_rows,
    parse_birth_date,
    upcoming_birthdays,
)
from gateway.directory_import.values import parse_tags
from gateway.models import CensorDecision, Letter, Prisoner
from gateway.providers.services import UnknownService, known_services, route
from gateway.web.auth import requires
from gateway.web.context import audit, db, settings
from gateway.web.labels import label

bp = flask.Blueprint("prisoners", __name__)

PAGE = 50
EDITABLE = ("code", "last_name", "first_name", "middle_name", "birth_year", "birth_date",
            "region", "facility_name", "facility_id", "provider")


@dataclass(frozen=True)
class Change:
    code: str
    name: str
    kind: str  # "add" | "update"
    fields: tuple[tuple[str, str, str], ...]  # (field, before, after)


@dataclass(frozen=True)
class Preview:
    report: ImportReport
    changes: tuple[Change, ...]


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) or, as Excel in Russia saves it, Windows-1251."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


# A cell starting with one of these is a formula to Excel and LibreOffice (a name like
# "=HYPERLINK(...)" typed into the directory would run on the exporter's machine).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """A leading apostrophe makes a spreadsheet show the cell as text (OWASP's advice)."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def unneutralize(cell: str) -> str:
    """What neutralize() added, taken off again on import."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def parse_csv(text: str) -> list[dict[str, str]]:
    return [{k: unneutralize(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text, newline=""))]


def preview_import(session: Session, rows: list[dict[str, str]]) -> Preview:
    """Run the real import, read what it changed from the session, and roll it back."""
    try:
        report = import_rows(session, rows)
        changes: list[Change] = []
        for obj in session.new:
            if isinstance(obj, Prisoner):
                shown = ("birth_date", "birth_year", "facility_name", "provider", "status")
                changes.append(Change(obj.code, obj.full_name, "add", tuple(
                    (name, "", str(getattr(obj, name))) for name in shown
                    if getattr(obj, name) not in (None, ""))))
        for obj in session.dirty:
            if not isinstance(obj, Prisoner):
                continue
            state = inspect(obj)
            diffs = []
            for name in (*EDITABLE, "status"):
                hist = state.attrs[name].history
                if hist.has_changes():
                    before = hist.deleted[0] if hist.deleted else ""
                    after = hist.added[0] if hist.added else ""
                    diffs.append((name, "" if before is None else str(before),
                                  "" if after is None else str(after)))
            if diffs:
                changes.append(Change(obj.code, obj.full_name, "update", tuple(diffs)))
        changes.sort(key=lambda c: (c.kind, c.code))
        return Preview(report, tuple(changes))
    finally:
        session.rollback()


@bp.route("/prisoners")
def index():
    session = db()
    q = flask.request.args.get("q", "").strip()
    status = flask.request.args.get("status", "")
    sort = flask.request.args.get("sort", "name")
    stmt = select(Prisoner)
    if q:
        # SQLite folds case for ASCII only: try the forms people type Russian names in.
        forms = {q, q.lower(), q.capitalize(), q.upper()}
        stmt = stmt.where(or_(*(col.like(f"%{f}%") for f in forms
                                for col in (Prisoner.last_name, Prisoner.first_name,
                                            Prisoner.code, Prisoner.facility_name))))
    if status:
        stmt = stmt.where(Prisoner.status == status)
    if sort == "fewest":
        # Who has had the fewest letters: needs every prisoner's count (one index-only
        # scan of letters.prisoner_id), so only on request.
        counts = (select(Letter.prisoner_id, func.count().label("n"))
                  .group_by(Letter.prisoner_id).subquery())
        stmt = (stmt.add_columns(func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.prisoner_id == Prisoner.id)
                .order_by(func.coalesce(counts.c.n, 0), Prisoner.last_name))
        rows = session.execute(stmt.limit(PAGE)).all()
    else:
        prisoners = session.scalars(stmt.order_by(Prisoner.last_name, Prisoner.first_name)
                                    .limit(PAGE)).all()
        counts_by_id = dict(session.execute(
            select(Letter.prisoner_id, func.count())
            .where(Letter.prisoner_id.in_([p.id for p in prisoners]))
            .group_by(Letter.prisoner_id)).all()) if prisoners else {}
        rows = [(p, counts_by_id.get(p.id, 0)) for p in prisoners]
    return flask.render_template("dashboard/prisoners.html", rows=rows, q=q, status=status,
                                 sort=sort, birthdays=upcoming_birthdays(session))


def _form_values(form) -> tuple[dict, list[str]]:
    values = {k: form.get(k, "").strip() for k in EDITABLE}
    errors = [_("%(field)s is required", field=label(k, "field"))
              for k in REQUIRED if not values[k]]
    if values["birth_year"]:
        if not values["birth_year"].isdigit() or not 1900 < int(values["birth_year"]) < 2100:
            errors.append(_("birth year must be a year like 1985"))
        else:
            values["birth_year"] = int(values["birth_year"])
    else:
        values["birth_year"] = None
    if values["birth_date"]:
        try:
            values["birth_date"] = parse_birth_date(values["birth_date"])
        except ValueError as exc:
            errors.append(str(exc))
        else:
            if values["birth_year"] is None:
                values["birth_year"] = values["birth_date"].year
            elif values["birth_year"] != values["birth_date"].year:
                errors.append(_("birth date and birth year disagree"))
    else:
        values["birth_date"] = None
    values["middle_name"] = values["middle_name"] or None
    values["provider"] = (values["provider"] or settings().default_provider).lower()
    try:  # the directory names a service; one nobody reaches would hold every letter
        route(values["provider"], settings())
    except UnknownService as exc:
        errors.append(f"{exc}; known: {', '.join(known_services(settings()))}")
    # What the groups' lists say about the person, for writers (gateway/directory_import).
    values["gender"] = form.get("gender") if form.get("gender") in ("f", "m") else None
    values["interests"] = form.get("interests", "").strip() or None
    values["interest_tags"] = parse_tags(form.get("interest_tags", "")) or None
    values["writer_note"] = form.get("writer_note", "").strip() or None
    values["wants_letters"] = form.get("wants_letters") == "1"
    return values, errors


@bp.route("/prisoners/new", methods=["GET", "POST"])
@bp.route("/prisoners/<int:prisoner_id>/edit", methods=["GET", "POST"])
@requires("moderator")
def edit(prisoner_id: int | None = None):
    session = db()
    prisoner = session.get(Prisoner, prisoner_id) if prisoner_id else None
    if prisoner_id and prisoner is None:
        flask.abort(404)
    errors: list[str] = []
    if flask.request.method == "POST":
        values, errors = _form_values(flask.request.form)
        clash = session.scalar(select(Prisoner.id).where(Prisoner.code == values["code"]))
        if clash is not None and clash != prisoner_id:
            errors.append(_("the code %(code)s is already used", code=values["code"]))
        if not errors:
            if prisoner is None:
                prisoner = Prisoner(**values)
                session.add(prisoner)
            else:
                for k, v in values.items():
                    setattr(prisoner, k, v)
            session.flush()
            audit("edit_prisoner", detail=f"{prisoner.code}: {prisoner.full_name}")
            session.commit()
            flask.flash(_("Saved %(name)s.", name=prisoner.full_name), "ok")
            return flask.redirect(flask.url_for("prisoners.index", q=prisoner.code))
    form = flask.request.form if flask.request.method == "POST" else {
        k: ("" if prisoner is None or getattr(prisoner, k) is None else getattr(prisoner, k))
        for k in EDITABLE}
    if flask.request.method != "POST":
        form = {**form, **_profile_form(prisoner)}
    return flask.render_template("dashboard/prisoner_form.html", prisoner=prisoner, form=form,
                                 errors=errors, fields=EDITABLE, required=REQUIRED)


def _profile_form(prisoner: Prisoner | None) -> dict[str, str]:
    if prisoner is None:
        return {"wants_letters": "1"}
    return {"gender": prisoner.gender or "", "interests": prisoner.interests or "",
            "interest_tags": ", ".join(prisoner.interest_tags or ()),
            "writer_note": prisoner.writer_note or "",
            "wants_letters": "1" if prisoner.wants_letters else ""}


@bp.route("/prisoners/<int:prisoner_id>/retire", methods=["POST"])
@requires("moderator")
def retire(prisoner_id: int):
    prisoner = db().get(Prisoner, prisoner_id)
    if prisoner is None:
        flask.abort(404)
    restore = flask.request.form.get("restore") == "1"
    prisoner.status = "in_custody" if restore else "retired"
    prisoner.can_receive = restore
    audit("restore_prisoner" if restore else "retire_prisoner",
          detail=f"{prisoner.code}: {prisoner.full_name}")
    db().commit()
    flask.flash(_("%(name)s is back in the directory.", name=prisoner.full_name) if restore
                else _("%(name)s is retired.", name=prisoner.full_name), "ok")
    return flask.redirect(flask.request.referrer or flask.url_for("prisoners.index"))


@bp.route("/prisoners/import", methods=["GET", "POST"])
@requires("moderator")
def import_csv():
    if flask.request.method == "GET":
        return flask.render_template("dashboard/prisoners_import.html", preview=None,
                                     csv_text="", columns=COLUMNS, optional=OPTIONAL)
    upload = flask.request.files.get("file")
    data = upload.read() if upload else flask.request.form.get("csv_text", "").encode()
    if not data.strip():
        flask.flash(_("Choose a CSV file."), "error")
        return flask.redirect(flask.url_for("prisoners.import_csv"))
    # The preview page carries the CSV text in a hidden field, so "apply" imports exactly
    # what was previewed.
    text = decode_csv(data)
    rows = parse_csv(text)
    if flask.request.form.get("apply") == "1":
        session = db()
        report = import_rows(session, rows)
        audit("import_prisoners", detail=f"added {report.added}, updated {report.updated}, "
                                         f"unchanged {report.unchanged}, "
                                         f"errors {len(report.errors)}")
        session.commit()
        flask.flash(_("Imported: %(added)d added, %(updated)d updated, %(unchanged)d unchanged, "
                      "%(errors)d rows with errors.", added=report.added, updated=report.updated,
                      unchanged=report.unchanged, errors=len(report.errors)), "ok")
        return flask.redirect(flask.url_for("prisoners.index"))
    return flask.render_template("dashboard/prisoners_import.html",
                                 preview=preview_import(db(), rows), csv_text=text,
                                 columns=COLUMNS, optional=OPTIONAL)


@bp.route("/prisoners/export.csv")
@requires("moderator")
def export_csv():
    """The directory as a CSV the import takes back (same columns). Audited: it is a list
    of political prisoners and where they are held."""
    session = db()
    prisoners = session.scalars(select(Prisoner).order_by(Prisoner.code)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    columns = (*COLUMNS, *OPTIONAL)
    writer.writerow(columns)
    for p in prisoners:
        writer.writerow(["" if getattr(p, c) is None else neutralize(str(getattr(p, c)))
                         for c in columns])
    audit("export_prisoners", detail=f"{len(prisoners)} prisoners")
    session.commit()
    response = flask.make_response(out.getvalue().encode("utf-8-sig"))  # BOM: Excel reads UTF-8
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="prisoners.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/facilities")
def facilities():
    """Facilities as the directory knows them, with their provider and what the censor
    stopped there: organizers learn what each censor will not let through."""
    session = db()
    rows = session.execute(
        select(Prisoner.facility_name, Prisoner.facility_id, Prisoner.provider,
               Prisoner.region, func.count())
        .group_by(Prisoner.facility_name, Prisoner.facility_id, Prisoner.provider,
                  Prisoner.region)
        .order_by(Prisoner.facility_name)).all()
    censored = {fid: (n, last) for fid, n, last in session.execute(
        select(CensorDecision.facility_id, func.count(), func.max(CensorDecision.at))
        .group_by(CensorDecision.facility_id))}
    recent = session.scalars(select(CensorDecision).order_by(CensorDecision.at.desc())
                             .limit(30)).all()
    return flask.render_template("dashboard/facilities.html", rows=rows, censored=censored,
                                 recent=recent)
