"""Safe by construction, checked against the running dashboard (gunicorn, real database):
every route but the login form and the probes wants a session; every write wants the
form's CSRF token. Routes are enumerated from the app's url_map, so a new page is covered
the day it is added."""

from __future__ import annotations

import pytest

from gateway.config import Settings
from gateway.web.app import create_app

from .conftest import http_session

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# Reachable without a session, on purpose: the login form, static files, the
# orchestrator's probe, and the one-click unsubscribe of a reminder (its signed token is the
# authority; tests/campaigns/test_unsubscribe.py). /metrics is not: it wants Prometheus'
# bearer token or a login (401). The language switch is public too: the login page offers
# it; it sets a preference cookie and redirects to a local path, nothing else
# (tests/dashboard/test_i18n.py).
PUBLIC = {"auth.login", "static", "metrics.healthz", "unsubscribe.confirm",
          "unsubscribe.one_click", "i18n.switch"}
# The one POST without our CSRF token (RFC 8058: the mail provider posts it): a token we did
# not sign gets 404 and changes nothing.
CSRF_EXEMPT = {"unsubscribe.one_click"}


def routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, a concrete URL) for every rule of the real app."""
    app = create_app(Settings(database_url="sqlite://", secret_key="x" * 32))
    adapter = app.url_map.bind("127.0.0.1")
    out = []
    for rule in app.url_map.iter_rules():
        url = adapter.build(rule.endpoint, {arg: 1 for arg in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


ROUTES = routes()


def test_the_url_map_is_what_we_think():
    endpoints = {e for e, _, _ in ROUTES}
    assert {"overview.index", "moderation.approve", "replies.match", "desk.submitted",
            "prisoners.import_csv", "letters.reveal", "admin.users"} <= endpoints
    assert len([r for r in ROUTES if r[1] == "POST"]) >= 15


def test_every_route_but_login_wants_a_session(stack):
    import httpx
    open_routes = []
    with httpx.Client(base_url=stack.web_url, timeout=10, follow_redirects=False) as anon:
        for endpoint, method, url in ROUTES:
            if endpoint in PUBLIC:
                continue
            r = anon.request(method, url, headers={"HX-Request": "true"} if "live" in url
                             else None)
            if method == "GET":
                ok = (r.status_code == 302 and "/login" in r.headers["location"]) or \
                     r.status_code == 401
            else:  # a POST without a session is refused before anything runs
                ok = r.status_code in (400, 401, 302) and "/login" in \
                     r.headers.get("location", "/login")
            if not ok:
                open_routes.append((method, url, r.status_code))
        assert open_routes == []
        # And the login page itself, of course, answers.
        assert anon.get("/login").status_code == 200


def test_every_write_without_a_csrf_token_fails(stack):
    client = http_session(stack.web_url, "admin")
    try:
        assert client.get("/").status_code == 200  # logged in
        for endpoint, method, url in ROUTES:
            if method != "POST":
                continue
            r = client.post(url, data={"number": "1", "note": "x", "reason": "because",
                                       "username": "admin", "password": "x"})
            if endpoint in CSRF_EXEMPT:
                assert r.status_code == 404, (endpoint, url, r.status_code)
                continue
            assert r.status_code == 400, (endpoint, url, r.status_code)
            assert "security token" in r.text, (endpoint, url)
        # Still logged in (even the logout was refused) and nothing was written.
        assert client.get("/").status_code == 200
    finally:
        client.close()
    actions = {r["action"] for r in stack.query("SELECT action FROM audit_log")}
    assert actions <= {"login", "view_letter", "login_failed"}, actions
