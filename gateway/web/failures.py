"""Failures: letters a person must resolve, each with its reason shown plainly.

UNKNOWN: the request may have reached the provider. A person who checked the service says
'it was submitted as number N' (-> SUBMITTED) or 'it was not' (-> READY).
FAILED: the provider refused for good: retry (-> READY), return to the writer, discard.
QUARANTINED: the gateway could not read the message: retry (-> RECEIVED), discard."""

from __future__ import annotations

import flask
from flask_babel import gettext as _
from sqlalchemy import select

from gateway import actions
from gateway.models import Letter
from gateway.states import ALLOWED
from gateway.states import LetterState as S
from gateway.states import Reason as R
from gateway.web.auth import requires
from gateway.web.context import actor, audit, db, settings
from gateway.web.desk import parse_price
from gateway.web.labels import label

bp = flask.Blueprint("failures", __name__)

KINDS = (S.UNKNOWN, S.FAILED, S.QUARANTINED)
PAGE = 50


@bp.route("/failures")
def index():
    session = db()
    groups = {state: session.scalars(select(Letter).where(Letter.state == state)
                                     .order_by(Letter.updated_at, Letter.id).limit(PAGE)).all()
              for state in KINDS}
    return flask.render_template("dashboard/failures.html", groups=groups)


def _letter_in(letter_id: int, states: tuple[S, ...]) -> Letter | None:
    letter = db().get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None:
        flask.abort(404)
    if letter.state not in states:
        flask.flash(_("Letter #%(id)d is now “%(state)s”: someone already acted.",
                      id=letter.id, state=label(letter.state)), "error")
        return None
    return letter


def _back(message: str, category: str = "ok"):
    flask.flash(message, category)
    return flask.redirect(flask.url_for("failures.index"))


@bp.route("/failures/<int:letter_id>/resolve", methods=["POST"])
@requires("moderator")
def resolve(letter_id: int):
    letter = _letter_in(letter_id, (S.UNKNOWN,))
    if letter is None:
        return flask.redirect(flask.url_for("failures.index"))
    form = flask.request.form
    if form.get("outcome") == "submitted":
        number = form.get("number", "").strip()
        if not number:
            return _back(_("Enter the number the service shows for this letter."), "error")
        try:
            price = parse_price(form.get("price", ""))
        except ValueError as exc:
            return _back(str(exc), "error")
        actions.record_submitted(db(), settings(), letter, number[:64], price=price,
                                 how="resolved by hand", actor=actor())
        audit("resolve_submitted", letter_id=letter.id, detail=f"number {number}")
        message = f"Letter #{letter.id} recorded as submitted, number {number}."
    elif form.get("outcome") == "not_submitted":
        actions.not_submitted(db(), letter, actor())  # due now: the next sweep submits it
        audit("resolve_not_submitted", letter_id=letter.id)
        message = f"Letter #{letter.id} will be submitted again."
    else:
        return _back(_("Say whether the letter was submitted."), "error")
    db().commit()
    return _back(message)


@bp.route("/failures/<int:letter_id>/retry", methods=["POST"])
@requires("moderator")
def retry(letter_id: int):
    letter = _letter_in(letter_id, (S.FAILED, S.QUARANTINED))
    if letter is None:
        return flask.redirect(flask.url_for("failures.index"))
    target = actions.retry(db(), letter, actor())
    audit("retry", letter_id=letter.id, detail=f"-> {target}")
    db().commit()
    return _back(_("Letter #%(id)d is “%(state)s” again.", id=letter.id, state=label(target)))


@bp.route("/failures/<int:letter_id>/return", methods=["POST"])
@requires("moderator")
def return_(letter_id: int):
    letter = _letter_in(letter_id, (S.FAILED, S.QUARANTINED))
    if letter is None:
        return flask.redirect(flask.url_for("failures.index"))
    reason = flask.request.form.get("reason", "").strip()
    if not reason:
        return _back(_("Write the reason the writer will read."), "error")
    if not letter.sender_sealed:
        return _back(_("This message has no known writer to return it to: discard it."),
                     "error")
    actions.return_to_writer(db(), settings(), letter, actor=actor(),
                             note=f"returned to the writer: {reason}",
                             code=R.RETURNED_BY_PERSON, findings=[actions.Because.said(reason)])
    audit("return", letter_id=letter.id, detail=reason[:1000])
    db().commit()
    return _back(_("Letter #%(id)d returned to the writer.", id=letter.id))


@bp.route("/failures/<int:letter_id>/discard", methods=["POST"])
@requires("moderator")
def discard(letter_id: int):
    letter = _letter_in(letter_id, tuple(s for s in KINDS if S.DISCARDED in ALLOWED[s]))
    if letter is None:
        return flask.redirect(flask.url_for("failures.index"))
    note = flask.request.form.get("note", "").strip() or "discarded by an organizer"
    actions.discard(db(), letter, actor(), note)
    audit("discard", letter_id=letter.id, detail=note)
    db().commit()
    return _back(_("Letter #%(id)d discarded.", id=letter.id))
