"""The desk: letters for services with no API, typed in by an organizer on the service's
site. The page shows each form field with a copy button (from gateway.providers.desk); the
organizer enters the number and price the service gave, and the letter is SUBMITTED as if
an adapter had done it. Below, the post: build a printable batch per facility, download
its PDF, mark it posted (gateway.providers.post)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import flask
from sqlalchemy import func, select

from gateway.models import Letter, PostBatch, PostBatchLetter
from gateway.providers.desk import DeskError, desk_queue, record_desk_submission
from gateway.providers.post import PostError, build_batch, mark_posted, post_queue
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
        raise ValueError(f"{raw!r} is not a price") from exc
    if price < 0 or price > 100000:
        raise ValueError(f"{raw!r} is not a plausible price")
    return price.quantize(Decimal("0.01"))


@bp.route("/desk")
def index():
    session = db()
    tasks = desk_queue(session, settings(), limit=PAGE)
    total = session.scalar(select(func.count()).select_from(Letter).where(
        Letter.state == S.DESK, Letter.provider == "desk")) or 0
    for task in tasks:
        audit("view_letter", letter_id=task.letter_id, detail="desk")
    waiting_post = [(facility_id, letters[0].prisoner.facility_name, len(letters))
                    for facility_id, letters in sorted(post_queue(session).items())]
    batches = session.execute(
        select(PostBatch.id, PostBatch.facility_id, PostBatch.created_at, PostBatch.pages,
               func.count(PostBatchLetter.id))
        .join(PostBatchLetter, PostBatchLetter.batch_id == PostBatch.id)
        .where(PostBatch.state == "PRINTED").group_by(PostBatch.id)
        .order_by(PostBatch.id)).all()
    session.commit()
    return flask.render_template("dashboard/desk.html", tasks=tasks, total=total,
                                 waiting_post=waiting_post, batches=batches)


def _back(message: str, category: str = "ok"):
    flask.flash(message, category)
    return flask.redirect(flask.url_for("desk.index"))


@bp.route("/desk/<int:letter_id>/submitted", methods=["POST"])
@requires("moderator")
def submitted(letter_id: int):
    try:
        price = parse_price(flask.request.form.get("price", ""))
    except ValueError as exc:
        return _back(str(exc), "error")
    number = flask.request.form.get("number", "")
    try:
        record_desk_submission(db(), letter_id, number, price, actor(), settings())
    except DeskError as exc:
        db().rollback()
        return _back(f"Letter #{letter_id}: {exc}.", "error")
    number = " ".join(number.split())
    audit("desk_submitted", letter_id=letter_id, detail=f"number {number}")
    db().commit()
    return _back(f"Letter #{letter_id} recorded as submitted, number {number}.")


@bp.route("/desk/post/<facility_id>/batch", methods=["POST"])
@requires("moderator")
def post_batch(facility_id: str):
    try:
        batch = build_batch(db(), facility_id, actor(), settings())
    except PostError as exc:
        db().rollback()
        return _back(str(exc), "error")
    audit("post_batch", detail=f"batch {batch.id} for {facility_id}, {batch.pages} pages")
    db().commit()
    return _back(f"Batch {batch.id} is ready to print ({batch.pages} pages).")


@bp.route("/desk/post/batches/<int:batch_id>.pdf")
@requires("moderator")
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
@requires("moderator")
def batch_posted(batch_id: int):
    try:
        mail = mark_posted(db(), batch_id, actor(), settings())
    except PostError as exc:
        db().rollback()
        return _back(str(exc), "error")
    audit("post_batch_posted", detail=f"batch {batch_id}: {len(mail)} letters")
    db().commit()
    return _back(f"Batch {batch_id} marked as posted.")
