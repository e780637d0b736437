"""The dashboard's import of a published list: upload, choose the columns, see the plan
(new, moved, absent, facilities to confirm), pick the uncertain facilities and who is gone,
apply in one transaction. The file travels in the form, so "apply" writes exactly what was
previewed; nothing is stored in between."""

from __future__ import annotations

import base64
import binascii

import flask
from flask_babel import gettext as _

from gateway.directory_import import plan_table
from gateway.directory_import.apply import apply_plan
from gateway.directory_import.mapping import FIELDS, Mapping, MappingError, guess
from gateway.directory_import.readers import ListFileError, read_bytes
from gateway.web.auth import requires
from gateway.web.context import actor, audit, db, settings

bp = flask.Blueprint("list_import", __name__)

MAX_BYTES = 20 * 1024 * 1024  # a 5,000-row XLSX is well under a megabyte


def _mapping(form, header: tuple[str, ...]) -> Mapping:
    if not form.get("mapped"):  # first look: guessed from the headers
        return guess(header)
    columns = {f: form[f"map_{f}"] for f in FIELDS if form.get(f"map_{f}") in header}
    return Mapping(columns, month_first=bool(form.get("month_first")))


@bp.route("/prisoners/import-list", methods=["GET", "POST"])
@requires("moderator")
def import_list():
    form = flask.request.form
    if flask.request.method == "GET":
        return flask.render_template("dashboard/prisoners_import_list.html", plan=None)
    upload = flask.request.files.get("file")
    if upload and upload.filename:
        filename, data = upload.filename, upload.read(MAX_BYTES + 1)
    else:
        filename = form.get("filename", "")
        try:
            data = base64.b64decode(form.get("data", ""), validate=True)
        except binascii.Error:
            data = b""
    if not data or len(data) > MAX_BYTES:
        flask.flash(_("Choose a list file (CSV, XLSX or JSON, up to 20 MB)."), "error")
        return flask.redirect(flask.url_for("list_import.import_list"))
    try:
        table = read_bytes(filename, data)
    except ListFileError as exc:
        flask.flash(f"{filename}: {exc}", "error")
        return flask.redirect(flask.url_for("list_import.import_list"))
    mapping = _mapping(form, table.header)
    confirmed = {int(k[8:]): v for k, v in form.items()
                 if k.startswith("confirm_") and k[8:].isdigit() and v}
    session = db()
    problem = None
    plan = None
    try:
        plan = plan_table(session, table, mapping, confirmed=confirmed,
                          full_list=not form.get("partial"), settings=settings())
    except MappingError as exc:
        problem = str(exc)
    if plan is not None and form.get("action") == "apply" and plan.ok:
        retire = frozenset(form.getlist("retire"))
        report = apply_plan(session, plan, settings(), retire=retire,
                            actor=actor())
        audit("import_list", detail=f"{filename}: added {report.added}, updated "
              f"{report.updated}, moved {report.moved}, retired {report.retired}, "
              f"held {report.held_letters}")
        session.commit()
        flask.flash(_("Imported: %(added)d added, %(updated)d updated, %(moved)d moved, "
                      "%(retired)d retired; %(held)d letters held for a new address.",
                      added=report.added, updated=report.updated, moved=report.moved,
                      retired=report.retired, held=report.held_letters), "ok")
        return flask.redirect(flask.url_for("prisoners.index"))
    session.rollback()
    return flask.render_template(
        "dashboard/prisoners_import_list.html", plan=plan, problem=problem, table=table,
        mapping=mapping, fields=FIELDS, filename=filename, confirmed=confirmed,
        data=base64.b64encode(data).decode(), partial=bool(form.get("partial")))
