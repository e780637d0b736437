"""Replies triage: scans no letter number matched, shown as images, matched by a person.

Suggestions are letters whose number differs from what was read by one digit (a misread
handwritten digit), found with one indexed IN query, never a scan of all letters.

Four eyes: with GATEWAY_REPLY_MATCH_CONFIRMATIONS=2, a match that is only a person's reading
(the number on the scan does not name the letter) is forwarded only when a second, different
organizer confirms the same letter. The first confirmation is an audit row, so it is shared
by every web process and says who read what."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import flask
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import AuditEntry, Letter, Reply, ReplyPage, utcnow
from gateway.replies.intake import forward
from gateway.replies.matching import match_letter, normalise_number
from gateway.states import ReplyState as RS
from gateway.web.auth import requires
from gateway.web.context import actor, audit, db, settings
from gateway.web.labels import label
from gateway.web.letters import reply_pages

bp = flask.Blueprint("replies", __name__)

PAGE = 30
FIRST_CONFIRMATION = "confirm_match"
# A first confirmation older than this no longer counts (keeps the audit query on its index).
CONFIRMATION_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Pending:
    """One organizer's match waiting for a second organizer."""
    username: str
    letter_id: int
    number: str  # what to type to confirm the same letter


def needs_second_person(reply: Reply, letter: Letter) -> bool:
    """Two confirmations are asked for when set, unless the number read on the scan itself
    names the letter (then the match is not a person's guess)."""
    if settings().reply_match_confirmations < 2:
        return False
    read, number = reply.letter_number, letter.provider_number
    return not (read and number and normalise_number(read) == normalise_number(number))


def pending_matches(session: Session, reply_ids: list[int]) -> dict[int, Pending]:
    """The latest first confirmation of each reply, from the audit log."""
    if not reply_ids:
        return {}
    wanted = {f"reply {i}": i for i in reply_ids}
    found: dict[int, Pending] = {}
    rows = session.execute(
        select(AuditEntry.detail, AuditEntry.username, AuditEntry.letter_id, Letter.provider_number)
        .join(Letter, Letter.id == AuditEntry.letter_id)
        .where(AuditEntry.action == FIRST_CONFIRMATION,
               AuditEntry.at >= utcnow() - CONFIRMATION_WINDOW,
               AuditEntry.detail.in_(list(wanted)))
        .order_by(AuditEntry.id))
    for detail, username, letter_id, number in rows:
        found[wanted[detail]] = Pending(username, letter_id, number or f"#{letter_id}")
    return found


def one_digit_away(number: str) -> list[str]:
    """Numbers that differ from this one in exactly one digit, in the canonical form."""
    canonical = normalise_number(number)
    digits = [i for i, ch in enumerate(canonical) if ch.isdigit()]
    variants = {canonical}
    for i in digits:
        for d in "0123456789":
            variants.add(canonical[:i] + d + canonical[i + 1:])
    return sorted(variants)


def suggestions(session: Session, reply: Reply, limit: int = 5) -> list[Letter]:
    """The letter the intake suggested from other evidence (if any), then letters one digit
    away from the number as read."""
    found: list[Letter] = []
    suggested_id = getattr(reply, "suggested_letter_id", None)
    if suggested_id and (letter := session.get(Letter, suggested_id)) is not None:
        found.append(letter)
    number = reply.letter_number
    if number and re.search(r"\d", number):
        found += [le for le in session.scalars(select(Letter).where(
            Letter.provider_number.in_(one_digit_away(number))).limit(limit))
            if le not in found]
    return found[:limit]


def find_letter(session: Session, typed: str) -> Letter | None:
    """By the provider's number as typed, or '#123' for the gateway's own letter id."""
    typed = typed.strip()
    if typed.startswith("#") and typed[1:].isdigit():
        return session.get(Letter, int(typed[1:]))
    return match_letter(session, typed)


@bp.route("/replies")
def index():
    session = db()
    replies = session.scalars(select(Reply).where(Reply.state == RS.UNMATCHED)
                              .order_by(Reply.received_at, Reply.id).limit(PAGE)).all()
    total = session.scalar(select(func.count()).select_from(Reply)
                           .where(Reply.state == RS.UNMATCHED)) or 0
    for reply in replies:  # a scan is a prisoner's letter: its view is audited like a letter's
        audit("view_reply", detail=f"reply {reply.id}: triage")
    session.commit()
    return flask.render_template(
        "dashboard/replies.html", replies=replies, total=total,
        pages=reply_pages(session, [r.id for r in replies]),
        suggested={r.id: suggestions(session, r) for r in replies},
        pending=pending_matches(session, [r.id for r in replies]))


@bp.route("/replies/<int:reply_id>/match", methods=["POST"])
@requires("moderator")
def match(reply_id: int):
    session = db()
    reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
    if reply is None:
        flask.abort(404)
    if reply.state != RS.UNMATCHED:
        flask.flash(_("Reply #%(id)d is now “%(state)s”: someone already matched it.",
                      id=reply.id, state=label(reply.state, "reply")), "error")
        return flask.redirect(flask.url_for("replies.index"))
    typed = flask.request.form.get("number", "")
    letter = find_letter(session, typed)
    if letter is None:
        flask.flash(_("No letter has the number %(number)s.", number=typed.strip()), "error")
        return flask.redirect(flask.url_for("replies.index"))
    if not letter.sender_sealed:
        flask.flash(_("Letter #%(id)d has no writer address to forward to.", id=letter.id),
                    "error")
        return flask.redirect(flask.url_for("replies.index"))
    if needs_second_person(reply, letter):
        first = pending_matches(session, [reply.id]).get(reply.id)
        if first is None or first.letter_id != letter.id:
            audit(FIRST_CONFIRMATION, letter_id=letter.id, detail=f"reply {reply.id}")
            session.commit()
            flask.flash(_("Reply #%(id)d: your match to letter #%(letter)d is recorded. A second "
                          "organizer must confirm it before it is forwarded.", id=reply.id,
                          letter=letter.id), "ok")
            return flask.redirect(flask.url_for("replies.index"))
        if first.username == actor():
            flask.flash(_("You already matched reply #%(id)d: a different organizer must "
                          "confirm it.", id=reply.id), "error")
            return flask.redirect(flask.url_for("replies.index"))
        confirmed = f" (read by {first.username}, confirmed by {actor()})"
    else:
        confirmed = ""
    pages = [(p.content_type, p.data) for p in session.scalars(
        select(ReplyPage).where(ReplyPage.reply_id == reply.id).order_by(ReplyPage.n))]
    reply.letter_id = letter.id
    forward(session, settings(), reply, letter, pages)
    audit("match_reply", letter_id=letter.id,
          detail=f"reply {reply.id} -> {reply.state}{confirmed}")
    session.commit()
    if reply.state == RS.FORWARDED:
        flask.flash(_("Reply #%(id)d matched to letter #%(letter)d and forwarded.", id=reply.id,
                      letter=letter.id), "ok")
    else:
        flask.flash(_("Reply #%(id)d matched to letter #%(letter)d; that letter's reply had "
                      "already been forwarded, so this one is kept as a duplicate.",
                      id=reply.id, letter=letter.id), "ok")
    return flask.redirect(flask.url_for("replies.index"))


@bp.route("/replies/<int:reply_id>/keep", methods=["POST"])
@requires("moderator")
def keep(reply_id: int):
    reply = db().get(Reply, reply_id)
    if reply is None:
        flask.abort(404)
    note = flask.request.form.get("note", "").strip()
    reply.note = note or "kept for later"
    audit("keep_reply", detail=f"reply {reply.id}: {reply.note}"[:1000])
    db().commit()
    flask.flash(_("Reply #%(id)d kept for later.", id=reply.id), "ok")
    return flask.redirect(flask.url_for("replies.index"))
