"""The desk: letters for services with no API, typed in by an organizer on the service's
site. The page shows each form field with a copy button; the organizer enters the number
and price the service gave, and the letter is SUBMITTED as if an adapter had done it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

import flask
from sqlalchemy import func, select

from gateway.lifecycle import move
from gateway.models import Letter, utcnow
from gateway.notices import queue_notice
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


def record_submission(letter: Letter, number: str, price: Decimal | None, how: str) -> None:
    """What the http adapter records on acceptance, done by a person's word."""
    letter.provider_number = number
    if price is not None:
        letter.price, letter.currency = price, letter.currency or "RUB"
    letter.submitted_at = utcnow()
    letter.next_attempt_at = utcnow() + timedelta(minutes=30)  # first status look-up
    move(db(), letter, S.SUBMITTED, actor=actor(), note=f"number {number} ({how})")
    queue_notice(db(), settings(), letter, "sent")


@bp.route("/desk")
def index():
    session = db()
    letters = session.scalars(select(Letter).where(Letter.state == S.DESK)
                              .order_by(Letter.updated_at, Letter.id).limit(PAGE)).all()
    total = session.scalar(select(func.count()).select_from(Letter)
                           .where(Letter.state == S.DESK)) or 0
    for letter in letters:
        audit("view_letter", letter_id=letter.id, detail="desk")
    session.commit()
    cards = []
    for le in letters:
        p = le.prisoner
        fields = [("Recipient surname", p.last_name if p else ""),
                  ("Recipient first name", p.first_name if p else ""),
                  ("Recipient patronymic", (p.middle_name or "") if p else ""),
                  ("Birth year", str(p.birth_year or "") if p else ""),
                  ("Facility", p.facility_name if p else ""),
                  ("Sender", settings().org_name),
                  ("Sender e-mail", settings().org_reply_email),
                  ("Sender phone", settings().org_phone),
                  ("Letter text", le.rendered or le.body or "")]
        cards.append(SimpleNamespace(letter=le, fields=fields))
    return flask.render_template("dashboard/desk.html", cards=cards, total=total)


@bp.route("/desk/<int:letter_id>/submitted", methods=["POST"])
@requires("moderator")
def submitted(letter_id: int):
    letter = db().get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None:
        flask.abort(404)
    if letter.state != S.DESK:
        flask.flash(f"Letter #{letter.id} is {letter.state} now: someone already did it.",
                    "error")
        return flask.redirect(flask.url_for("desk.index"))
    number = flask.request.form.get("number", "").strip()
    try:
        price = parse_price(flask.request.form.get("price", ""))
    except ValueError as exc:
        flask.flash(str(exc), "error")
        return flask.redirect(flask.url_for("desk.index"))
    if not number:
        flask.flash("Enter the letter number the service gave.", "error")
        return flask.redirect(flask.url_for("desk.index"))
    record_submission(letter, number[:64], price, "typed in at the desk")
    audit("desk_submitted", letter_id=letter.id, detail=f"number {number}")
    db().commit()
    flask.flash(f"Letter #{letter.id} recorded as submitted, number {number}.", "ok")
    return flask.redirect(flask.url_for("desk.index"))
