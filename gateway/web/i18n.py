"""The dashboard's languages: Russian by default, English on a switch.

Organizers and volunteers are Russian speakers, often on a phone; the switch is for the
occasional helper abroad. The choice lives in a cookie, so it holds on the login page too
(before anyone is known) and on a shared phone it follows the browser, not the account."""

from __future__ import annotations

from pathlib import Path

import flask
from flask_babel import Babel

from gateway.web.auth import local_path

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("ru", "en")
COOKIE = "gw_lang"
# A year: the choice is a preference, not a secret.
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = flask.Blueprint("i18n", __name__)


def current_language() -> str:
    chosen = flask.request.cookies.get(COOKIE) if flask.has_request_context() else None
    if chosen in LANGUAGES:
        return chosen
    return flask.current_app.config.get("DASHBOARD_DEFAULT_LOCALE", "ru")


@bp.get("/lang/<code>")
def switch(code: str):
    # A GET link, so it works before login and without a form; it changes a preference only.
    if code not in LANGUAGES:
        flask.abort(404)
    response = flask.redirect(local_path(flask.request.args.get("next"), "auth.login"))
    response.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, samesite="Lax",
                        httponly=True, secure=flask.request.is_secure)
    return response


def init_app(app: flask.Flask) -> None:
    app.config.setdefault("DASHBOARD_DEFAULT_LOCALE", "ru")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    app.config["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    Babel(app, locale_selector=current_language)
    app.register_blueprint(bp)

    @app.context_processor
    def _language():
        return {"lang": current_language(), "languages": LANGUAGES}
