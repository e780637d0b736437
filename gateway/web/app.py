"""The organizers' dashboard: a plain Flask app, server-rendered, htmx for live parts.

Safe by construction: every route needs a session unless it is listed in PUBLIC, every
POST needs a CSRF token, every response carries a strict Content-Security-Policy (no inline
script or style anywhere in the templates), pages are never cached."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import flask
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway.config import Settings, get_settings
from gateway.crypto import keyring
from gateway.db import session_factory
from gateway.templating import TEMPLATES_DIR
from gateway.web import (
    admin,
    auth,
    campaigns,
    desk,
    failures,
    guidance,
    i18n,
    letters,
    list_import,
    metrics,
    moderation,
    overview,
    prisoners,
    replies,
    twofactor,
    unsubscribe,
)
from gateway.web.formatting import register_filters
from gateway.web.sessions import ServerSessionInterface

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"

# What a volunteer may reach besides the desk's own pages.
VOLUNTEER_REACHES = frozenset({"auth.login", "auth.logout", "static", "metrics.healthz",
                               "unsubscribe.confirm", "unsubscribe.one_click",
                               "i18n.switch"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def create_app(settings: Settings | None = None) -> flask.Flask:
    settings = settings or get_settings()
    if settings.secret_key.get_secret_value() == Settings.model_fields["secret_key"].default \
            .get_secret_value():
        log.warning("dashboard: GATEWAY_SECRET_KEY is the default; sessions can be forged. "
                    "Set a long random key before anyone but you can reach the dashboard.")
    app = flask.Flask(__name__, template_folder=str(TEMPLATES_DIR),
                      static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(
        # The sessions' own key (HKDF from the secret); old secrets' keys still verify.
        SECRET_KEY=keyring(settings).session_key,
        SECRET_KEY_FALLBACKS=keyring(settings).session_fallbacks,
        SESSION_COOKIE_NAME="gw_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=auth.SESSION_MAX_AGE,
        WTF_CSRF_TIME_LIMIT=None,  # the token is bound to the session, which expires itself
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(hours=1),
        OVERVIEW_SETTLED_SECONDS=60.0,  # settled counts and spend: see overview.py
    )
    # Any other Flask setting, with the GATEWAY_FLASK_ prefix.
    app.config.from_prefixed_env("GATEWAY_FLASK")
    if hops := settings.web_proxy_hops:
        # The proxy's X-Forwarded-Proto makes the request https, so Flask-WTF's referer check
        # and the Secure cookie see what the browser sees; -For gives the throttle the client.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.extensions["gateway.settings"] = settings
    app.extensions["gateway.sessions"] = session_factory(settings.database_url)
    app.session_interface = ServerSessionInterface(settings.web_cookie_secure)
    csrf = CSRFProtect(app)
    # The one POST without our form's token: RFC 8058 one-click unsubscribe, authorized by
    # the signed token in its URL (unsubscribe.py).
    csrf.exempt(unsubscribe.one_click)
    i18n.init_app(app)
    register_filters(app)

    for module in (auth, overview, letters, moderation, failures, desk, replies, prisoners,
                   list_import, campaigns, admin, metrics, twofactor, guidance, unsubscribe):
        app.register_blueprint(module.bp)

    @app.before_request
    def _volunteers_work_the_desk():
        # Registered after the login gate: a volunteer sees the desk and the post only.
        user = flask.g.get("user")
        endpoint = flask.request.endpoint or ""
        if user is None or user.role != "volunteer" or endpoint in VOLUNTEER_REACHES or \
                endpoint.startswith("desk."):
            return None
        if flask.request.method == "GET" and not flask.request.headers.get("HX-Request"):
            return flask.redirect(flask.url_for("desk.index"))
        flask.abort(403)

    @app.teardown_appcontext
    def _close_db(_exc: BaseException | None) -> None:
        session = flask.g.pop("db", None)
        if session is not None:
            session.close()

    @app.after_request
    def _security_headers(response: flask.Response) -> flask.Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # Same-origin: Flask-WTF checks the Referer of every POST over HTTPS; other sites
        # still learn nothing of the dashboard's addresses.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if flask.request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return flask.render_template("dashboard/error.html", title=_("Form expired"),
                                     message=_("The form was missing its security token or it "
                                               "expired. Go back, reload the page and try "
                                               "again.")), 400

    @app.errorhandler(403)
    def _forbidden(_exc):
        return flask.render_template("dashboard/error.html", title=_("Not allowed"),
                                     message=_("Your role does not allow this action.")), 403

    @app.errorhandler(404)
    def _not_found(_exc):
        return flask.render_template("dashboard/error.html", title=_("Not found"),
                                     message=_("There is nothing at this address.")), 404

    return app
