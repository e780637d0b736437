"""One letter, whole: timeline, texts, findings, attempts, replies, mail; and letter lists.

Opening a letter shows its body, so each view is audit-logged; the writer's address is
masked, and only an admin may reveal it, giving a reason that goes into the audit log."""

from __future__ import annotations

import io

import flask
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.crypto import keyring, mask
from gateway.models import (
    Letter,
    LetterAttachment,
    LetterEvent,
    OutboundMail,
    Reply,
    ReplyPage,
    SubmissionAttempt,
)
from gateway.states import LetterState
from gateway.web.auth import requires
from gateway.web.context import audit, db, settings
from gateway.web.highlight import highlight

bp = flask.Blueprint("letters", __name__)

PAGE = 50
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def writer_address(letter: Letter) -> str | None:
    if not letter.sender_sealed:
        return None
    return keyring(settings()).unseal(letter.sender_sealed)


def masked_address(letter: Letter) -> str:
    address = writer_address(letter)
    return mask(address) if address else "—"


def reply_pages(session: Session, reply_ids: list[int]) -> dict[int, list]:
    """Page ids per reply, without loading the scans themselves."""
    pages: dict[int, list] = {rid: [] for rid in reply_ids}
    if reply_ids:
        for row in session.execute(select(ReplyPage.id, ReplyPage.reply_id, ReplyPage.n,
                                          ReplyPage.content_type)
                                   .where(ReplyPage.reply_id.in_(reply_ids))
                                   .order_by(ReplyPage.reply_id, ReplyPage.n)):
            pages[row.reply_id].append(row)
    return pages


def _letter_or_404(letter_id: int) -> Letter:
    letter = db().get(Letter, letter_id)
    if letter is None:
        flask.abort(404)
    return letter


def _render_letter(letter: Letter, revealed: str | None = None):
    session = db()
    events = session.scalars(select(LetterEvent).where(LetterEvent.letter_id == letter.id)
                             .order_by(LetterEvent.id)).all()
    attempts = session.scalars(select(SubmissionAttempt)
                               .where(SubmissionAttempt.letter_id == letter.id)
                               .order_by(SubmissionAttempt.id)).all()
    replies = session.scalars(select(Reply).where(Reply.letter_id == letter.id)
                              .order_by(Reply.id)).all()
    mails = session.execute(select(OutboundMail.id, OutboundMail.kind, OutboundMail.state,
                                   OutboundMail.created_at, OutboundMail.sent_at,
                                   OutboundMail.attempts, OutboundMail.last_error)
                            .where(OutboundMail.letter_id == letter.id)
                            .order_by(OutboundMail.id)).all()
    attachments = session.execute(select(LetterAttachment.id, LetterAttachment.filename,
                                         LetterAttachment.content_type)
                                  .where(LetterAttachment.letter_id == letter.id)).all()
    audit("view_letter", letter_id=letter.id)
    session.commit()
    return flask.render_template(
        "dashboard/letter.html", letter=letter, events=events, attempts=attempts,
        replies=replies, pages=reply_pages(session, [r.id for r in replies]), mails=mails,
        attachments=attachments, inline_images=INLINE_IMAGES,
        body=highlight(letter.body, letter.findings),
        rendered=highlight(letter.rendered, letter.findings),
        masked=masked_address(letter), revealed=revealed)


@bp.route("/letters/<int:letter_id>")
def show(letter_id: int):
    return _render_letter(_letter_or_404(letter_id))


@bp.route("/letters/<int:letter_id>/reveal", methods=["POST"])
@requires("admin")
def reveal(letter_id: int):
    letter = _letter_or_404(letter_id)
    reason = flask.request.form.get("reason", "").strip()
    if len(reason) < 5:
        flask.flash(_("Say why you need the writer's address (a few words at least)."), "error")
        return flask.redirect(flask.url_for("letters.show", letter_id=letter.id))
    address = writer_address(letter)
    audit("reveal_address", letter_id=letter.id, detail=reason[:1000])
    db().commit()
    return _render_letter(letter, revealed=address or "—")


@bp.route("/letters/<int:letter_id>/attachments/<int:attachment_id>")
def attachment(letter_id: int, attachment_id: int):
    att = db().get(LetterAttachment, attachment_id)
    if att is None or att.letter_id != letter_id:
        flask.abort(404)
    audit("view_attachment", letter_id=letter_id, detail=att.filename[:200])
    db().commit()
    inline = flask.request.args.get("inline") == "1" and att.content_type in INLINE_IMAGES
    return _bytes_response(att.data, att.content_type, att.filename, inline)


@bp.route("/reply-pages/<int:page_id>")
def reply_page(page_id: int):
    page = db().get(ReplyPage, page_id)
    if page is None:
        flask.abort(404)
    # A scan is a prisoner's letter: each view is audited like a letter's.
    reply = db().get(Reply, page.reply_id)
    audit("view_reply", letter_id=reply.letter_id if reply else None,
          detail=f"reply {page.reply_id}: page {page.n}")
    db().commit()
    inline = page.content_type in INLINE_IMAGES
    ext = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(
        page.content_type, "bin")
    return _bytes_response(page.data, page.content_type, f"reply-{page.reply_id}-{page.n}.{ext}",
                           inline)


def _bytes_response(data: bytes, content_type: str, filename: str, inline: bool):
    """Only known raster images are shown inline; anything else is a download, never
    rendered by the browser (a letter's 'photo' may be HTML or SVG with script)."""
    response = flask.send_file(
        io.BytesIO(data),
        mimetype=content_type if inline else "application/octet-stream",
        as_attachment=not inline, download_name=filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/letters")
def index():
    """Letters by state, newest first, keyset-paged by id (fast at any depth)."""
    session = db()
    state = flask.request.args.get("state") or None
    q = flask.request.args.get("q", "").strip()
    before = flask.request.args.get("before", type=int)
    stmt = select(Letter).order_by(Letter.id.desc()).limit(PAGE + 1)
    if state in LetterState.__members__:
        stmt = stmt.where(Letter.state == state)
    else:
        state = None
    if q:
        if q.isdigit():
            stmt = stmt.where((Letter.provider_number == q) | (Letter.id == int(q)))
        else:
            stmt = stmt.where((Letter.provider_number == q) | (Letter.public_id == q))
    if before:
        stmt = stmt.where(Letter.id < before)
    rows = session.scalars(stmt).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return flask.render_template("dashboard/letters.html", letters=rows, state=state, q=q,
                                 states=list(LetterState),
                                 next_before=rows[-1].id if more and rows else None)
