"""Login (password, then a TOTP code when the account has one), logout, the login gate in
front of every route, and role checks.

Sessions live on the server (sessions.py); the user row is read on every request, so a
deactivated or re-roled organizer is cut off at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

import flask
from flask_babel import gettext as _
from flask_babel import ngettext

from gateway.models import User
from gateway.web import sessions, twofactor
from gateway.web.accounts import (
    authenticate,
    record_failure,
    record_login,
    role_allows,
    throttled,
)
from gateway.web.context import current_user, db

bp = flask.Blueprint("auth", __name__)

SESSION_MAX_AGE = sessions.MAX_AGE
SESSION_IDLE = sessions.IDLE
# Endpoints reachable without a session: everything else is behind the gate. /metrics
# checks its own bearer token or session.
PUBLIC = frozenset({"auth.login", "auth.second_factor", "static", "metrics.healthz",
                    "metrics.metrics", "unsubscribe.confirm", "unsubscribe.one_click",
                    "i18n.switch"})
# What an admin who must enrol a second factor may still open.
ENROLMENT = frozenset({"twofactor.enrol", "twofactor.qr", "auth.logout", "static",
                       "i18n.switch"})


@bp.before_app_request
def _login_gate():
    flask.g.user = None
    session = flask.session
    user_id = getattr(session, "user_id", None)
    if user_id is not None and not session.pending:
        user = db().get(User, user_id)
        db().commit()  # end the read: on SQLite every transaction holds the write lock
        if user is not None and user.active:
            flask.g.user = user
        else:
            sessions.end(db())
            db().commit()
    if flask.g.user is None and flask.request.endpoint not in PUBLIC:
        if flask.request.headers.get("HX-Request"):
            # htmx would swap the login page into a fragment: tell it to reload instead.
            return flask.Response(status=401, headers={"HX-Redirect": flask.url_for("auth.login")})
        if flask.request.method != "GET":
            flask.abort(401)
        query = flask.request.query_string.decode()
        here = flask.request.path + (f"?{query}" if query else "")
        return flask.redirect(flask.url_for("auth.login", next=here))
    user = flask.g.user
    if user is not None and not user.totp_sealed and twofactor.required_for(user) and \
            flask.request.endpoint not in ENROLMENT | PUBLIC:
        if flask.request.method != "GET" or flask.request.headers.get("HX-Request"):
            flask.abort(403)
        return flask.redirect(flask.url_for("twofactor.enrol"))
    return None


def requires(role: str) -> Callable:
    """The view needs at least this role (viewer < moderator < admin)."""
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None or not role_allows(user.role, role):
                flask.abort(403)
            return view(*args, **kwargs)
        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped
    return decorator


def local_path(target: str | None, fallback: str = "overview.index") -> str:
    """`target` if it is a path on this site, else the fallback endpoint's URL: an attacker's
    link must not bounce a fresh login (or the language switch) to their site."""
    if not target:
        return flask.url_for(fallback)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return flask.url_for(fallback)
    return target


def _wait_text(wait: timedelta) -> str:
    seconds = int(wait.total_seconds()) + 1
    if seconds < 120:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    return ngettext("%(num)d minute", "%(num)d minutes", seconds // 60 + 1)


def _client() -> str:
    return flask.request.remote_addr or "?"  # behind GATEWAY_WEB_PROXY_HOPS: the real client


def _complete_login(user: User):
    sessions.begin(db(), user.id)
    record_login(db(), user, _client())
    sessions.purge_expired(db())
    db().commit()
    return flask.redirect(local_path(flask.request.args.get("next")))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if flask.request.method == "POST":
        username = flask.request.form.get("username", "").strip()
        password = flask.request.form.get("password", "")
        session = db()
        if wait := throttled(session, username, _client()):
            session.commit()
            return flask.render_template(
                "dashboard/login.html", error=_("Too many failed attempts. Wait %(wait)s and try again.",
                                 wait=_wait_text(wait))), 429
        user = authenticate(session, username, password, _client())
        if user is None:
            session.commit()
            return flask.render_template("dashboard/login.html",
                                         error=_("Wrong username or password.")), 401
        if user.totp_sealed:
            sessions.begin(session, user.id, pending_second_factor=True)
            session.commit()
            return flask.redirect(flask.url_for("auth.second_factor",
                                                next=flask.request.args.get("next")))
        return _complete_login(user)
    if current_user() is not None:
        return flask.redirect(flask.url_for("overview.index"))
    return flask.render_template("dashboard/login.html", error=None)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    """The code from the authenticator app, after a right password (a pending session)."""
    session = flask.session
    if not getattr(session, "pending", False):
        return flask.redirect(flask.url_for("auth.login"))
    user = db().get(User, session.user_id)
    if user is None or not user.active:
        sessions.end(db())
        db().commit()
        return flask.redirect(flask.url_for("auth.login"))
    error, status = None, 200
    if flask.request.method == "POST":
        if wait := throttled(db(), user.username, _client()):
            error, status = _("Too many failed attempts. Wait %(wait)s and try again.",
                              wait=_wait_text(wait)), 429
        elif twofactor.accept_code(user, flask.request.form.get("code", "")):
            return _complete_login(user)
        else:
            record_failure(db(), user.username, _client())
            error, status = "That code is not right. Try the newest code from the app.", 401
        db().commit()
    return flask.render_template("dashboard/login_code.html", error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    sessions.end(db())
    db().commit()
    return flask.redirect(flask.url_for("auth.login"))
