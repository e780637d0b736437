"""What every view needs from the request: the database session, settings, who is acting."""

from __future__ import annotations

import flask
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.models import AuditEntry, User


def db() -> Session:
    """One session per request, closed at teardown; views commit what they change."""
    if "db" not in flask.g:
        flask.g.db = flask.current_app.extensions["gateway.sessions"]()
    return flask.g.db


def settings() -> Settings:
    return flask.current_app.extensions["gateway.settings"]


def current_user() -> User | None:
    return flask.g.get("user")


def actor() -> str:
    user = current_user()
    assert user is not None, "views that act are behind the login gate"
    return user.username


def audit(action: str, *, letter_id: int | None = None, detail: str | None = None) -> None:
    """Add an audit row to the request's session; it commits with the view's change."""
    db().add(AuditEntry(username=actor(), action=action, letter_id=letter_id, detail=detail))
