"""The moderation queue: held letters with the flagged passages marked, and four decisions.

approve -> READY (the sweeper submits it), return -> REJECTED with a notice to the writer,
discard -> DISCARDED, defer -> stays HELD with a note. Each records who decided."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import flask
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from gateway import actions
from gateway.intake.writers import confirm_known
from gateway.models import Letter, Sender
from gateway.pipeline.statuses import censor_reasons
from gateway.providers.services import UnknownService, route
from gateway.states import LetterState as S
from gateway.states import Reason as R
from gateway.web.auth import local_path, requires
from gateway.web.context import actor, audit, db, settings
from gateway.web.highlight import highlight
from gateway.web.labels import N_, label
from gateway.web.letters import masked_address

bp = flask.Blueprint("moderation", __name__)

PAGE = 20
HISTORY_ROWS = 8  # a facility's most frequent censor reasons shown beside a letter


@dataclass(frozen=True)
class ReturnReason:
    label: str
    reason_ru: str
    reason_en: str


RETURN_REASONS: dict[str, ReturnReason] = {
    "politics": ReturnReason(
        N_("Political content"),
        "В письме есть политические темы — цензура такие письма не пропускает. "
        "Пожалуйста, уберите их.",
        "The letter touches on politics, which the censor stops. Please leave it out."),
    "case": ReturnReason(
        N_("Discusses the criminal case"),
        "В письме обсуждается уголовное дело — цензура такое не пропускает.",
        "The letter discusses the criminal case, which the censor stops."),
    "language": ReturnReason(
        N_("Not in Russian"),
        "Письмо должно быть написано по-русски (кириллицей).",
        "The letter must be written in Russian (Cyrillic script)."),
    "rude": ReturnReason(
        N_("Rude words"),
        "Уберите, пожалуйста, грубые слова — из-за них письмо не пропустят.",
        "Please remove the rude words: the censor would stop the letter for them."),
    "flagged": ReturnReason(
        N_("Only the flagged passages"),
        "Исправьте, пожалуйста, отмеченные места.",
        "Please change the marked passages."),
}


def _held_letter(letter_id: int) -> Letter | None:
    # FOR UPDATE: two moderators deciding the same letter at once queue, and the second
    # sees that it is no longer HELD.
    letter = db().get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None:
        flask.abort(404)
    if letter.state != S.HELD:
        flask.flash(_("Letter #%(id)d is now “%(state)s”: someone already decided.",
                      id=letter.id, state=label(letter.state)), "error")
        return None
    return letter


def _done(message: str):
    db().commit()
    flask.flash(message, "ok")
    # Local paths only: a form field must not send the organizer to another site.
    target = flask.request.form.get("next")
    return flask.redirect(local_path(target) if target else flask.url_for("moderation.index"))


@bp.route("/moderation")
def index():
    session = db()
    letters = session.scalars(select(Letter).where(Letter.state == S.HELD)
                              .order_by(Letter.updated_at, Letter.id).limit(PAGE)).all()
    total = session.scalar(select(func.count()).select_from(Letter)
                           .where(Letter.state == S.HELD)) or 0
    for letter in letters:
        audit("view_letter", letter_id=letter.id, detail="moderation queue")
    session.commit()
    confirmed = set(session.scalars(select(Sender.address_hash).where(
        Sender.address_hash.in_({le.sender_hash for le in letters if le.sender_hash}),
        Sender.verified_at.is_not(None))))
    history: dict[str, list] = {}
    for le in letters:  # beside a letter held for resembling a censored one
        if le.prisoner and any(f.get("rule") == "censor_memory" for f in le.findings or ()):
            facility = le.prisoner.facility_id
            if facility not in history:
                history[facility] = censor_reasons(session, facility)[:HISTORY_ROWS]
    cards = [SimpleNamespace(letter=le, body=highlight(le.body, le.findings),
                             masked=masked_address(le), confirmed=le.sender_hash in confirmed,
                             censor_history=history.get(le.prisoner.facility_id, [])
                             if le.prisoner else [])
             for le in letters]
    return flask.render_template("dashboard/moderation.html", cards=cards, total=total,
                                 reasons=RETURN_REASONS)


@bp.route("/moderation/<int:letter_id>/approve", methods=["POST"])
@requires("moderator")
def approve(letter_id: int):
    letter = _held_letter(letter_id)
    if letter is None:
        return flask.redirect(flask.url_for("moderation.index"))
    note = flask.request.form.get("note", "").strip()
    if letter.prisoner is None:
        flask.flash(_("Letter #%(id)d has no prisoner yet: choose one first.", id=letter.id),
                    "error")
        return flask.redirect(flask.url_for("moderation.index"))
    try:
        way = route(letter.prisoner.provider, settings())
    except UnknownService as exc:
        flask.flash(_("Letter #%(id)d: %(error)s.", id=letter.id, error=exc), "error")
        return flask.redirect(flask.url_for("moderation.index"))
    submitted = actions.approve(db(), letter, way, actor(), note, settings=settings())
    audit("approve", letter_id=letter.id, detail=note or None)
    if submitted:
        return _done(_("Letter #%(id)d approved: it will be submitted shortly.", id=letter.id))
    if letter.state == S.GATHERED:
        return _done(_("Letter #%(id)d approved: it goes with the prisoner's postcard.",
                       id=letter.id))
    return _done(_("Letter #%(id)d approved: it waits at the %(route)s.", id=letter.id,
                   route=way.adapter))


@bp.route("/moderation/<int:letter_id>/return", methods=["POST"])
@requires("moderator")
def return_(letter_id: int):
    letter = _held_letter(letter_id)
    if letter is None:
        return flask.redirect(flask.url_for("moderation.index"))
    form = flask.request.form
    own = form.get("own_words", "").strip()
    template = RETURN_REASONS.get(form.get("template", ""))
    if not own and template is None:
        flask.flash(_("Choose a reason or write one in your own words."), "error")
        return flask.redirect(flask.url_for("moderation.index"))
    flagged = [f for f in letter.findings or () if f.get("severity") in ("hold", "return")]
    findings = []
    if template is not None:
        passages = tuple(p for f in flagged for p in f.get("passages") or ())
        findings.append(actions.Because(template.reason_ru, template.reason_en,
                                        template.label, passages))
    if own:
        findings.append(actions.Because.said(own))
    why = "; ".join(x for x in (template.label if template else "", own) if x)
    queued = actions.return_to_writer(db(), settings(), letter, actor=actor(),
                                      note=f"returned to the writer: {why}",
                                      code=R.RETURNED_BY_PERSON, findings=findings)
    audit("return", letter_id=letter.id, detail=why[:1000])
    if queued:
        return _done(_("Letter #%(id)d returned to the writer.", id=letter.id))
    return _done(_("Letter #%(id)d returned to the writer (the writer already had a notice "
                   "today, so none was sent).", id=letter.id))


@bp.route("/moderation/<int:letter_id>/discard", methods=["POST"])
@requires("moderator")
def discard(letter_id: int):
    letter = _held_letter(letter_id)
    if letter is None:
        return flask.redirect(flask.url_for("moderation.index"))
    note = flask.request.form.get("note", "").strip() or "discarded by an organizer"
    actions.discard(db(), letter, actor(), note)
    audit("discard", letter_id=letter.id, detail=note)
    return _done(_("Letter #%(id)d discarded.", id=letter.id))


@bp.route("/moderation/<int:letter_id>/defer", methods=["POST"])
@requires("moderator")
def defer(letter_id: int):
    letter = _held_letter(letter_id)
    if letter is None:
        return flask.redirect(flask.url_for("moderation.index"))
    note = flask.request.form.get("note", "").strip()
    if not note:
        flask.flash(_("Leave a note saying what the letter is waiting for."), "error")
        return flask.redirect(flask.url_for("moderation.index"))
    actions.defer(db(), letter, actor(), note)
    audit("defer", letter_id=letter.id, detail=note)
    return _done(_("Letter #%(id)d deferred.", id=letter.id))


@bp.route("/moderation/<int:letter_id>/confirm-writer", methods=["POST"])
@requires("moderator")
def confirm_writer(letter_id: int):
    """The organizer knows this writer: confirmed as if they had answered our code (the
    letter itself stays where it is, to be decided on its own)."""
    letter = db().get(Letter, letter_id)
    if letter is None:
        flask.abort(404)
    if not letter.sender_hash:
        flask.flash(_("Letter #%(id)d has no known writer.", id=letter.id), "error")
        return flask.redirect(flask.url_for("moderation.index"))
    _confirmed, released = confirm_known(db(), letter.sender_hash, actor())
    audit("confirm_writer", letter_id=letter.id,
          detail=f"{len(released)} waiting letter(s) released")
    if released:
        return _done(ngettext("The writer of letter #%(id)d is confirmed; %(num)d of their "
                              "waiting letters goes on.",
                              "The writer of letter #%(id)d is confirmed; %(num)d of their "
                              "waiting letters go on.", len(released), id=letter.id))
    return _done(_("The writer of letter #%(id)d is confirmed.", id=letter.id))
