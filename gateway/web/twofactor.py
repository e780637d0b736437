"""Optional two-factor login (TOTP, RFC 6238, any authenticator app) for organizers.

Enrolment: a new secret is shown once, as a QR code and as text; it is kept (sealed) in the
server session until a code from the app proves it was copied, and only then stored on the
account. With GATEWAY_ADMIN_TOTP_REQUIRED an admin without it can open nothing but this
page. A code is accepted once: its time step is remembered."""

from __future__ import annotations

import io

import flask
import pyotp
import segno
from flask_babel import gettext as _

from gateway.crypto import keyring
from gateway.models import User, utcnow
from gateway.web.context import audit, current_user, db, settings

bp = flask.Blueprint("twofactor", __name__)

ISSUER = "Letters gateway"
PENDING = "totp_pending"  # session key: the sealed secret being enrolled


def _keys():
    # The address-sealing key: old secrets still open it while `gateway keys rotate` runs.
    return keyring(settings())


def accept_code(user: User, code: str, secret: str | None = None) -> bool:
    """True when the code is right for this moment (±30 s of clock drift) and its time step
    was not used before; the step is then remembered. The caller commits."""
    code = "".join(code.split())
    if secret is None:
        if not user.totp_sealed:
            return False
        secret = _keys().unseal(user.totp_sealed)
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(secret)
    now = utcnow()
    step_now = totp.timecode(now)
    for offset in (-1, 0, 1):
        step = step_now + offset
        if step <= (user.totp_last_step or -1):
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            user.totp_last_step = step
            return True
    return False


def required_for(user: User) -> bool:
    return user.role == "admin" and settings().admin_totp_required


def _pending_secret() -> str | None:
    sealed = flask.session.get(PENDING)
    return _keys().unseal(sealed) if sealed else None


@bp.route("/account/two-factor", methods=["GET", "POST"])
def enrol():
    user = current_user()
    error = None
    if flask.request.method == "POST":
        secret = _pending_secret()
        if secret is None:
            return flask.redirect(flask.url_for("twofactor.enrol"))
        if accept_code(user, flask.request.form.get("code", ""), secret):
            user.totp_sealed = _keys().seal(secret)
            flask.session.pop(PENDING, None)
            audit("enable_totp", detail=user.username)
            db().commit()
            flask.flash(_("Two-factor login is on. You will be asked for a code at each login."),
                        "ok")
            return flask.redirect(flask.url_for("overview.index"))
        error = _("That code is not right. Check the phone's clock and try the newest code.")
    if user.totp_sealed:
        return flask.render_template("dashboard/two_factor.html", enabled=True,
                                     required=required_for(user), error=error)
    secret = _pending_secret()
    if secret is None:
        secret = pyotp.random_base32()
        flask.session[PENDING] = _keys().seal(secret)
    return flask.render_template("dashboard/two_factor.html", enabled=False, secret=secret,
                                 required=required_for(user), error=error), \
        400 if error else 200


@bp.route("/account/two-factor/qr.svg")
def qr():
    secret = _pending_secret()
    if secret is None:
        flask.abort(404)
    uri = pyotp.TOTP(secret).provisioning_uri(name=current_user().username, issuer_name=ISSUER)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2)
    return flask.Response(out.getvalue(), mimetype="image/svg+xml")


@bp.route("/account/two-factor/off", methods=["POST"])
def disable():
    user = current_user()
    if required_for(user):
        flask.abort(403)
    if not accept_code(user, flask.request.form.get("code", "")):
        db().commit()
        flask.flash(_("That code is not right; two-factor login stays on."), "error")
        return flask.redirect(flask.url_for("twofactor.enrol"))
    user.totp_sealed, user.totp_last_step = None, None
    audit("disable_totp", detail=user.username)
    db().commit()
    flask.flash(_("Two-factor login is off."), "ok")
    return flask.redirect(flask.url_for("twofactor.enrol"))
