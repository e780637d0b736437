"""Dashboard sessions kept on the server.

Once someone has given their password, the cookie carries only a random token; the
session's data and its owner live in `web_sessions` under the token's SHA-256. Deleting the
row ends the session for every copy of the cookie: logout, a password reset, an admin's
"log out everywhere". Before login the visitor holds only a CSRF token, in Flask's signed
cookie: nothing to revoke, and no row for every stranger who opens the login page.

The server decides expiry: 12 h after login, or 2 h after the person last did something."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import flask
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.models import WebSession, utcnow
from gateway.web.context import db as request_db

MAX_AGE = timedelta(hours=12)
IDLE = timedelta(hours=2)
SECOND_FACTOR_WAIT = timedelta(minutes=5)  # from a right password to the code
SEEN_EVERY = timedelta(minutes=1)  # seen_at is written at most this often
PREFIX = "s1."  # tells a server token from Flask's signed pre-login cookie


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expired(row: WebSession, now=None) -> bool:
    now = now or utcnow()
    if row.pending_second_factor:
        return now - row.created_at > SECOND_FACTOR_WAIT
    return now - row.created_at > MAX_AGE or now - row.seen_at > IDLE


class ServerSession(SecureCookieSession):
    """flask.session for a signed-in browser: the dict is the row's `data`."""

    def __init__(self, initial=None, *, row_id: int | None = None, user_id: int | None = None,
                 pending: bool = False, token: str | None = None) -> None:
        super().__init__(initial or {})
        self.row_id, self.user_id, self.pending, self.token = row_id, user_id, pending, token
        self.ended = False  # the row was deleted: the cookie goes too
        self.new_token = False  # begin() made the row: the cookie is set
        self.touch = False


def begin(db: Session, user_id: int, *, pending_second_factor: bool = False) -> None:
    """Turn this browser's session into a new server session for this user: a new token
    (no fixation), nothing carried over. The caller commits."""
    session = flask.session._get_current_object()
    assert isinstance(session, ServerSession), "the app's session interface makes these"
    if session.row_id is not None:
        db.execute(delete(WebSession).where(WebSession.id == session.row_id))
    token = PREFIX + secrets.token_urlsafe(32)
    row = WebSession(token_hash=token_hash(token), user_id=user_id,
                     pending_second_factor=pending_second_factor, data={})
    db.add(row)
    db.flush()
    session.clear()
    session.row_id, session.user_id, session.pending, session.token = \
        row.id, user_id, pending_second_factor, token
    session.ended, session.new_token = False, True


def end(db: Session) -> None:
    """Log this browser out (the row goes; the cookie is cleared). The caller commits."""
    current = flask.session
    if isinstance(current, ServerSession) and current.row_id is not None:
        db.execute(delete(WebSession).where(WebSession.id == current.row_id))
        current.ended = True
    else:
        current.clear()


def end_all(db: Session, user_id: int) -> int:
    """Every session of this user, on every device. The caller commits."""
    return db.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0


def purge_expired(db: Session) -> None:
    """Sessions idle past their limit (the absolute limit is checked on use)."""
    db.execute(delete(WebSession).where(WebSession.seen_at < utcnow() - IDLE))


def _loopback(host: str) -> bool:
    name = urlsplit("//" + host).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ServerSessionInterface(SecureCookieSessionInterface):
    """Flask's session interface, with the signed-in part kept in SQL."""

    def __init__(self, cookie_secure: bool | None) -> None:
        self._secure = cookie_secure

    def get_cookie_secure(self, app) -> bool:
        # Secure unless set otherwise, or the dashboard is reached on loopback over plain
        # HTTP (an SSH tunnel, development); behind a TLS proxy the request is https.
        if self._secure is not None:
            return self._secure
        if app.config.get("SESSION_COOKIE_SECURE"):  # the old GATEWAY_FLASK_ way still holds
            return True
        request = flask.request
        return request.is_secure or not _loopback(request.host)

    def open_session(self, app, request):
        cookie = request.cookies.get(self.get_cookie_name(app), "")
        if not cookie.startswith(PREFIX):
            signed = super().open_session(app, request)
            return None if signed is None else ServerSession(dict(signed))
        # The request's own database session: on SQLite every transaction takes the write
        # lock, so a second connection here would wait for the first.
        db = request_db()
        row = db.scalar(select(WebSession).where(WebSession.token_hash == token_hash(cookie)))
        if row is None or expired(row):
            if row is not None:
                db.delete(row)
            db.commit()
            gone = ServerSession()
            gone.ended = True  # the browser's cookie is cleared by save_session
            return gone
        session = ServerSession(dict(row.data or {}), row_id=row.id, user_id=row.user_id,
                                pending=row.pending_second_factor, token=cookie)
        # A person at the keyboard keeps the session alive; htmx's polling does not.
        session.touch = not request.headers.get("HX-Request") and \
            utcnow() - row.seen_at > SEEN_EVERY
        db.commit()
        return session

    def save_session(self, app, session, response) -> None:
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), \
            self.get_cookie_path(app)
        secure, samesite = self.get_cookie_secure(app), self.get_cookie_samesite(app)
        if session.row_id is None:
            if session.ended:  # a dead token: replaced by pre-login data, or deleted
                session.modified = True
            return super().save_session(app, session, response)
        if session.ended:
            response.delete_cookie(name, domain=domain, path=path, secure=secure,
                                   httponly=True, samesite=samesite)
            return None
        if session.modified or session.touch or session.new_token:
            db = request_db()
            db.rollback()  # views commit what they change; nothing else may ride along
            row = db.get(WebSession, session.row_id)
            if row is not None:
                row.data = dict(session)
                row.seen_at = utcnow()
            db.commit()
        if session.new_token:
            response.set_cookie(name, session.token, max_age=int(MAX_AGE.total_seconds()),
                                domain=domain, path=path, secure=secure, httponly=True,
                                samesite=samesite)
        response.vary.add("Cookie")
        return None
