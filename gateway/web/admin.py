"""People and audit (admins only): organizer accounts and roles, and the audit log."""

from __future__ import annotations

import flask
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from gateway.crypto import keyring
from gateway.digest.subscription import masked_email
from gateway.models import AuditEntry, User, WebSession
from gateway.web import sessions
from gateway.web.accounts import Role, create_user, set_password
from gateway.web.auth import requires
from gateway.web.context import audit, current_user, db, settings
from gateway.web.labels import label

bp = flask.Blueprint("admin", __name__)

PAGE = 100


@bp.route("/users", methods=["GET", "POST"])
@requires("admin")
def users():
    session = db()
    if flask.request.method == "POST":
        form = flask.request.form
        try:
            user = create_user(session, form.get("username", ""), form.get("password", ""),
                               form.get("role", "viewer"))
        except ValueError as exc:
            session.rollback()
            # The account rules' messages are in the catalogue (N_ in accounts.py).
            flask.flash(_(str(exc)), "error")
        else:
            audit("add_user", detail=f"{user.username} as {user.role}")
            session.commit()
            flask.flash(_("Added %(name)s (%(role)s).", name=user.username,
                          role=label(user.role, "role")), "ok")
        return flask.redirect(flask.url_for("admin.users"))
    people = session.scalars(select(User).order_by(User.username)).all()
    open_sessions = dict(session.execute(
        select(WebSession.user_id, func.count()).where(~WebSession.pending_second_factor)
        .group_by(WebSession.user_id)).all())
    keys = keyring(settings())
    digest_emails = {p.id: masked_email(p, keys) for p in people}  # masked, never whole
    return flask.render_template("dashboard/users.html", people=people, roles=list(Role),
                                 open_sessions=open_sessions, digest_emails=digest_emails)


@bp.route("/users/<int:user_id>", methods=["POST"])
@requires("admin")
def update_user(user_id: int):
    session = db()
    user = session.get(User, user_id)
    if user is None:
        flask.abort(404)
    form = flask.request.form
    me = current_user()
    if user.id == me.id and (form.get("role", user.role) != "admin" or
                             form.get("active", "1") != "1"):
        flask.flash(_("You cannot demote or deactivate yourself; ask another admin."), "error")
        return flask.redirect(flask.url_for("admin.users"))
    # changes: the audit log's English record; shown: the same, for the flash, translated.
    changes, shown = [], []
    if form.get("role") and form["role"] != user.role:
        if form["role"] not in {r.value for r in Role}:
            flask.abort(400)
        changes.append(f"role {user.role} -> {form['role']}")
        shown.append(_("role %(old)s -> %(new)s", old=label(user.role, "role"),
                       new=label(form["role"], "role")))
        user.role = form["role"]
    if "active" in form and (form["active"] == "1") != user.active:
        user.active = form["active"] == "1"
        changes.append("activated" if user.active else "deactivated")
        shown.append(_("activated") if user.active else _("deactivated"))
    if form.get("password"):
        try:
            set_password(user, form["password"])
        except ValueError as exc:
            flask.flash(_(str(exc)), "error")
            return flask.redirect(flask.url_for("admin.users"))
        changes.append("password reset")
        shown.append(_("password reset"))
    if form.get("reset_totp") == "1" and user.totp_sealed:
        user.totp_sealed, user.totp_last_step = None, None  # a lost phone
        changes.append("two-factor reset")
        shown.append(_("two-factor reset"))
    if changes:
        # A new password, or a person let go: whoever holds one of their sessions (a copied
        # cookie included) must log in again.
        if {"password reset", "deactivated", "two-factor reset"} & set(changes):
            ended = sessions.end_all(session, user.id)
            changes.append(f"{ended} session(s) ended")
            shown.append(ngettext("%(num)d session(s) ended", "%(num)d session(s) ended", ended))
        audit("update_user", detail=f"{user.username}: {', '.join(changes)}")
        session.commit()
        flask.flash(_("%(name)s: %(changes)s.", name=user.username, changes=", ".join(shown)),
                    "ok")
    return flask.redirect(flask.url_for("admin.users"))


@bp.route("/users/<int:user_id>/logout-everywhere", methods=["POST"])
@requires("admin")
def logout_everywhere(user_id: int):
    session = db()
    user = session.get(User, user_id)
    if user is None:
        flask.abort(404)
    ended = sessions.end_all(session, user.id)
    audit("logout_everywhere", detail=f"{user.username}: {ended} session(s) ended")
    session.commit()
    flask.flash(ngettext("%(name)s: %(num)d session(s) ended on every device.",
                         "%(name)s: %(num)d session(s) ended on every device.", ended,
                         name=user.username), "ok")
    return flask.redirect(flask.url_for("admin.users"))


@bp.route("/audit")
@requires("admin")
def audit_log():
    session = db()
    before = flask.request.args.get("before", type=int)
    who = flask.request.args.get("user", "").strip()
    action = flask.request.args.get("action", "").strip()
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE + 1)
    if before:
        stmt = stmt.where(AuditEntry.id < before)
    if who:
        stmt = stmt.where(AuditEntry.username == who)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    rows = session.scalars(stmt).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return flask.render_template("dashboard/audit.html", rows=rows, who=who, action=action,
                                 next_before=rows[-1].id if more and rows else None)
