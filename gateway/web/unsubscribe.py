"""The one page a writer opens: the one-click unsubscribe link of a birthday reminder.

No login (a writer has no account) and no address on the page: the signed token in the URL
is the only authority, and it names a subscription row, never an address. GET only asks
(mail scanners and link previews follow GETs; they must not unsubscribe anyone); POST
unsubscribes. That POST alone is exempt from the CSRF check: RFC 8058 one-click POSTs come
from the writer's mail provider, without our form's token, and the signed token in the URL
is what a forger cannot make."""

from __future__ import annotations

import flask

from gateway import birthday_reminders
from gateway.crypto import keyring
from gateway.web.context import db, settings

bp = flask.Blueprint("unsubscribe", __name__)


def _page(state: str, token: str, status: int = 200):
    return flask.render_template("dashboard/unsubscribe.html", state=state, token=token,
                                 org_name=settings().org_name), status


@bp.get("/unsubscribe/<token>")
def confirm(token: str):
    if birthday_reminders.verify_token(keyring(settings()), token) is None:
        return _page("unknown", token, 404)
    return _page("ask", token)


@bp.post("/unsubscribe/<token>")
def one_click(token: str):
    done = birthday_reminders.unsubscribe(db(), keyring(settings()), token)
    if done is None:
        return _page("unknown", token, 404)
    db().commit()
    return _page("done", token)
