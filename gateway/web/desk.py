"""The desk and the post, for a volunteer with a phone (gateway.human).

/desk: the queues (per service and facility), the letters this volunteer holds, sent
letters waiting for news, scans to upload, and the post's batches. A volunteer takes a
letter (a lease), copies each field of the service's form, records the number and price,
and later what became of it. Volunteers reach these pages and nothing else."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import flask
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from gateway.human import desk as work
from gateway.human import scans
from gateway.human.post import PostError, build_batch, mark_posted, post_queue
from gateway.models import Letter, LetterAttachment, PostBatch, PostBatchLetter
from gateway.providers.profiles import load_profiles
from gateway.states import LetterState as S
from gateway.web.auth import requires
from gateway.web.context import actor, audit, db, settings

bp = flask.Blueprint("desk", __name__)

PAGE = 20


def parse_price(raw: str) -> Decimal | None:
    """'312,50' or '312.50' -> Decimal; blank -> None; anything else -> ValueError."""
    raw = raw.strip().replace(",", ".").replace(" ", "").replace("\u202f", "")
    if not raw:
        return None
    try:
        price = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(_("“%(raw)s” is not a price", raw=raw)) from exc
    if price < 0 or price > 100000:
        raise ValueError(_("“%(raw)s” is not a plausible price", raw=raw))
    return price.quantize(Decimal("0.01"))


def _back(message: str, category: str = "ok", to: str | None = None):
    flask.flash(message, category)
    return flask.redirect(to or flask.url_for("desk.index"))


@bp.route("/desk")
@requires("volunteer")
def index():
    session = db()
    me = actor()
    held = [work.task(session, le, settings()) for le in work.mine(session, me)]
    waiting_post = [(facility_id, letters[0].prisoner.facility_name, len(letters))
                    for facility_id, letters in sorted(post_queue(session).items())]
    batches = session.execute(
        select(PostBatch.id, PostBatch.facility_id, PostBatch.created_at, PostBatch.pages,
               PostBatch.state, PostBatch.postage, func.count(PostBatchLetter.id))
        .join(PostBatchLetter, PostBatchLetter.batch_id == PostBatch.id)
        .where(PostBatch.state == "PRINTED").group_by(PostBatch.id)
        .order_by(PostBatch.id)).all()
    news = work.awaiting_news(session, limit=PAGE)
    found = work.find(session, flask.request.args.get("q", "")) \
        if flask.request.args.get("q") else None
    total = session.scalar(select(func.count()).select_from(Letter).where(
        Letter.state == S.DESK, Letter.provider == work.DESK)) or 0
    session.commit()
    return flask.render_template(
        "dashboard/desk.html", queues=work.queues(session), held=held, total=total,
        waiting_post=waiting_post, batches=batches, news=news, found=found,
        reasons={name: p.censor_reasons for name, p in load_profiles().items()},
        q=flask.request.args.get("q", ""))


@bp.route("/desk/take", methods=["POST"])
@requires("volunteer")
def take():
    form = flask.request.form
    letter = work.take(db(), settings(), actor(), service=form.get("service") or None,
                       facility_id=form.get("facility_id") or None)
    if letter is None:
        db().rollback()
        return _back(_("Nothing left in that queue: someone else took the last one."), "error")
    audit("view_letter", letter_id=letter.id, detail="desk: taken")
    db().commit()
    return flask.redirect(flask.url_for("desk.show", letter_id=letter.id))


@bp.route("/desk/<int:letter_id>")
@requires("volunteer")
def show(letter_id: int):
    session = db()
    letter = session.get(Letter, letter_id)
    if letter is None:
        flask.abort(404)
    if letter.state != S.DESK or letter.leased_by != actor():
        session.commit()
        return _back(_("Letter #%(id)d is not in your hands: take a letter from a queue.",
                       id=letter_id), "error")
    t = work.task(session, letter, settings())
    audit("view_letter", letter_id=letter.id, detail="desk")
    session.commit()
    return flask.render_template("dashboard/desk_task.html", t=t)


@bp.route("/desk/<int:letter_id>/photos/<int:attachment_id>")
@requires("volunteer")
def photo(letter_id: int, attachment_id: int):
    """A photo to attach on the service's form; only to the volunteer holding the letter."""
    letter = db().get(Letter, letter_id)
    att = db().get(LetterAttachment, attachment_id)
    if letter is None or att is None or att.letter_id != letter_id or \
            letter.leased_by != actor() or letter.state != S.DESK:
        flask.abort(404)
    response = flask.make_response(att.data)
    response.headers["Content-Type"] = att.content_type
    response.headers["Content-Disposition"] = f'attachment; filename="photo-{attachment_id}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/desk/<int:letter_id>/release", methods=["POST"])
@requires("volunteer")
def release(letter_id: int):
    if work.release(db(), letter_id, actor()):
        db().commit()
        return _back(_("Letter #%(id)d is back in its queue.", id=letter_id))
    db().rollback()
    return _back(_("Letter #%(id)d was not yours to give back.", id=letter_id), "error")


@bp.route("/desk/<int:letter_id>/submitted", methods=["POST"])
@requires("volunteer")
def submitted(letter_id: int):
    here = flask.url_for("desk.show", letter_id=letter_id)
    try:
        price = parse_price(flask.request.form.get("price", ""))
    except ValueError as exc:
        return _back(str(exc), "error", here)
    number = flask.request.form.get("number", "")
    try:
        work.record(db(), settings(), letter_id, actor(), number, price)
    except work.DeskError as exc:
        db().rollback()
        return _back(_("Letter #%(id)d: %(error)s.", id=letter_id, error=exc), "error")
    number = " ".join(number.split())
    audit("desk_submitted", letter_id=letter_id, detail=f"number {number}")
    db().commit()
    return _back(_("Letter #%(id)d recorded as submitted, number %(number)s.", id=letter_id,
                   number=number))


@bp.route("/desk/<int:letter_id>/refused", methods=["POST"])
@requires("volunteer")
def refused(letter_id: int):
    try:
        work.refused(db(), settings(), letter_id, actor(), flask.request.form.get("reason", ""))
    except work.DeskError as exc:
        db().rollback()
        return _back(_("Letter #%(id)d: %(error)s.", id=letter_id, error=exc), "error",
                     flask.url_for("desk.show", letter_id=letter_id))
    audit("desk_refused", letter_id=letter_id)
    db().commit()
    return _back(_("Letter #%(id)d is with an organizer now; nothing was paid.", id=letter_id))


@bp.route("/desk/<int:letter_id>/outcome", methods=["POST"])
@requires("volunteer")
def outcome(letter_id: int):
    form = flask.request.form
    reason = (form.get("own_reason") or "").strip() or (form.get("reason") or "").strip()
    try:
        work.record_outcome(db(), settings(), letter_id, actor(), form.get("outcome", ""),
                            reason)
    except work.DeskError as exc:
        db().rollback()
        return _back(_("Letter #%(id)d: %(error)s.", id=letter_id, error=exc), "error")
    audit("desk_outcome", letter_id=letter_id, detail=f"{form.get('outcome')}: {reason}"[:1000])
    db().commit()
    return _back(_("Letter #%(id)d: outcome recorded.", id=letter_id))


@bp.route("/desk/scans", methods=["POST"])
@requires("volunteer")
def upload_scans():
    form = flask.request.form
    files = [f.read() for f in flask.request.files.getlist("pages")]
    letter = None
    if form.get("letter_id"):
        letter = db().get(Letter, int(form["letter_id"]))
    try:
        reply, _mail = scans.upload(db(), settings(), files, actor(),
                                    number=form.get("number"), letter=letter)
    except scans.ScanError as exc:
        db().rollback()
        return _back(str(exc), "error")
    if reply is None:
        db().rollback()
        return _back(_("This scan was uploaded before; nothing new was stored."), "error")
    audit("upload_reply", letter_id=reply.letter_id or reply.suggested_letter_id,
          detail=f"reply {reply.id}: {reply.state}, {len(files)} file(s)")
    db().commit()
    if reply.state == "FORWARDED":
        return _back(_("Reply #%(id)d forwarded to the writer of letter #%(letter)d.",
                       id=reply.id, letter=reply.letter_id))
    if reply.state == "DUPLICATE":
        return _back(_("Reply #%(id)d: this letter's reply was already forwarded.", id=reply.id))
    return _back(_("Reply #%(id)d stored; an organizer confirms the letter in Replies "
                   "before it is forwarded.", id=reply.id))


@bp.route("/desk/volunteers")
@requires("moderator")
def volunteers():
    rows = work.volunteer_counts(db())
    prices = work.differing_prices(db())
    db().commit()
    return flask.render_template("dashboard/desk_volunteers.html", rows=rows, prices=prices)


# -- the post -------------------------------------------------------------------------------

@bp.route("/desk/post/<facility_id>/batch", methods=["POST"])
@requires("volunteer")
def post_batch(facility_id: str):
    try:
        batch = build_batch(db(), facility_id, actor(), settings())
    except PostError as exc:
        db().rollback()
        return _back(str(exc), "error")
    audit("post_batch", detail=f"batch {batch.id} for {facility_id}, {batch.pages} pages")
    db().commit()
    return _back(ngettext("Batch %(id)d is ready to print (%(num)d page).",
                          "Batch %(id)d is ready to print (%(num)d pages).", batch.pages,
                          id=batch.id))


@bp.route("/desk/post/batches/<int:batch_id>.pdf")
@requires("volunteer")
def batch_pdf(batch_id: int):
    batch = db().get(PostBatch, batch_id)
    if batch is None:
        flask.abort(404)
    audit("post_batch_download", detail=f"batch {batch_id}")
    db().commit()
    response = flask.make_response(batch.pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="batch-{batch_id}.pdf"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/desk/post/batches/<int:batch_id>/posted", methods=["POST"])
@requires("volunteer")
def batch_posted(batch_id: int):
    try:
        postage = parse_price(flask.request.form.get("postage", ""))
    except ValueError as exc:
        return _back(str(exc), "error")
    try:
        mail = mark_posted(db(), batch_id, actor(), settings(), postage=postage)
    except PostError as exc:
        db().rollback()
        return _back(str(exc), "error")
    audit("post_batch_posted", detail=f"batch {batch_id}: {len(mail)} letters, "
                                      f"postage {postage or 0}")
    db().commit()
    return _back(_("Batch %(id)d marked as posted.", id=batch_id))
