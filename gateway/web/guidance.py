"""The guide for writers, edited by organizers (Markdown, Russian and English, with a
preview of the whole guide as a writer gets it); and each organizer's own digest setting."""

from __future__ import annotations

import flask
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import delete

from gateway.crypto import keyring
from gateway.digest.subscription import masked_email, set_digest
from gateway.guidance.content import LANGUAGES, build_guide, save_markdown, stored_markdown
from gateway.guidance.picks import who_needs_letters
from gateway.models import GuidanceText, User, utcnow
from gateway.providers.profiles import load_profiles
from gateway.web.auth import requires
from gateway.web.context import audit, current_user, db, settings

bp = flask.Blueprint("guidance", __name__)

MAX_CHARS = 20_000


@bp.route("/guidance", methods=["GET", "POST"])
@requires("moderator")
def edit():
    session = db()
    texts = stored_markdown(session)
    form = flask.request.form
    if flask.request.method == "POST":
        if form.get("action") == "reset":
            session.execute(delete(GuidanceText))
            audit("guidance_reset")
            session.commit()
            flask.flash(_("The guide is back to the shipped text."), "ok")
            return flask.redirect(flask.url_for("guidance.edit"))
        texts = {lang: form.get(lang, "").replace("\r\n", "\n")[:MAX_CHARS] for lang in LANGUAGES}
        if not all(t.strip() for t in texts.values()):
            flask.flash(_("Both the Russian and the English text are needed."), "error")
        elif form.get("action") == "save":
            for lang in LANGUAGES:
                save_markdown(session, lang, texts[lang], current_user().username)
            audit("guidance_saved")
            session.commit()
            flask.flash(_("Saved: the next guide a writer asks for uses this text."), "ok")
            return flask.redirect(flask.url_for("guidance.edit"))
    s = settings()
    guide = build_guide(texts, who_needs_letters(session, utcnow().date()),
                        load_profiles()["http"], reply_ordered=s.reply_ordered,
                        gateway_address=s.gateway_address)
    # markdown-it renders with raw HTML off: its output carries no markup of anyone's own.
    preview = {lang: Markup(guide.html[lang]) for lang in LANGUAGES}
    return flask.render_template("dashboard/guidance.html", texts=texts, preview=preview)


@bp.route("/me/digest", methods=["GET", "POST"])
@requires("viewer")
def digest():
    session = db()
    user = session.get(User, current_user().id)
    keys = keyring(settings())
    if flask.request.method == "POST":
        form = flask.request.form
        try:
            set_digest(user, keys, email=form.get("email", "").strip() or None,
                       opt_in=form.get("opt_in") == "1")
        except ValueError as exc:
            session.rollback()
            flask.flash(str(exc), "error")
        else:
            audit("digest_setting", detail="on" if user.digest_opt_in else "off")
            session.commit()
            flask.flash(_("Weekly digest on.") if user.digest_opt_in else _("Weekly digest off."),
                        "ok")
        return flask.redirect(flask.url_for("guidance.digest"))
    return flask.render_template("dashboard/digest_settings.html", opt_in=user.digest_opt_in,
                                 email=masked_email(user, keys))
