"""Login, logout, the login gate in front of every route, and role checks.

The session cookie holds only the user id and two timestamps; the user row is read on every
request, so a deactivated or re-roled organizer is cut off at once, and the server decides
expiry (absolute and idle) rather than trusting the browser's cookie lifetime."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

import flask

from gateway.models import User
from gateway.web.accounts import authenticate, role_allows, throttled
from gateway.web.context import current_user, db

bp = flask.Blueprint("auth", __name__)

SESSION_MAX_AGE = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
# Endpoints reachable without a session: everything else is behind the gate.
PUBLIC = frozenset({"auth.login", "static", "metrics.healthz", "metrics.metrics"})


@bp.before_app_request
def _login_gate():
    flask.g.user = None
    user_id = flask.session.get("uid")
    now = time.time()
    if user_id is not None:
        fresh = (now - flask.session.get("login_at", 0) < SESSION_MAX_AGE.total_seconds()
                 and now - flask.session.get("seen_at", 0) < SESSION_IDLE.total_seconds())
        user = db().get(User, user_id) if fresh else None
        db().commit()  # end the read: on SQLite every transaction holds the write lock
        if user is not None and user.active:
            flask.g.user = user
            # The overview's 5-second poll is not a person at the keyboard: it must not keep
            # an abandoned session alive.
            if not flask.request.headers.get("HX-Request"):
                flask.session["seen_at"] = now
        else:
            flask.session.clear()
    if flask.g.user is None and flask.request.endpoint not in PUBLIC:
        if flask.request.headers.get("HX-Request"):
            # htmx would swap the login page into a fragment: tell it to reload instead.
            return flask.Response(status=401, headers={"HX-Redirect": flask.url_for("auth.login")})
        if flask.request.method != "GET":
            flask.abort(401)
        query = flask.request.query_string.decode()
        here = flask.request.path + (f"?{query}" if query else "")
        return flask.redirect(flask.url_for("auth.login", next=here))
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


def _safe_next(target: str | None) -> str:
    # Only local paths: an attacker's link must not bounce a fresh login to their site.
    if not target:
        return flask.url_for("overview.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return flask.url_for("overview.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if flask.request.method == "POST":
        username = flask.request.form.get("username", "").strip()
        password = flask.request.form.get("password", "")
        ip = flask.request.remote_addr or "?"
        session = db()
        if throttled(session, username, ip):
            error = "Too many failed attempts. Wait 15 minutes and try again."
            status = 429
        else:
            user = authenticate(session, username, password, ip)
            session.commit()
            if user is not None:
                flask.session.clear()  # no fixation: a fresh session for the new login
                flask.session.permanent = True
                flask.session.update(uid=user.id, login_at=time.time(), seen_at=time.time())
                return flask.redirect(_safe_next(flask.request.args.get("next")))
            error = "Wrong username or password."
            status = 401
        return flask.render_template("dashboard/login.html", error=error), status
    if current_user() is not None:
        return flask.redirect(flask.url_for("overview.index"))
    return flask.render_template("dashboard/login.html", error=None)


@bp.route("/logout", methods=["POST"])
def logout():
    flask.session.clear()
    return flask.redirect(flask.url_for("auth.login"))
