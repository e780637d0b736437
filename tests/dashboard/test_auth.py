"""Login, logout, the login gate, roles, throttling and CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.models import AuditEntry, User, WebSession
from gateway.web.accounts import create_user

from .conftest import PASSWORD, csrf_token, login

pytestmark = pytest.mark.dashboard

PAGES = ["/", "/overview/live", "/moderation", "/desk", "/failures", "/replies", "/letters",
         "/letters/1", "/prisoners", "/facilities", "/prisoners/new", "/prisoners/import",
         "/prisoners/import-list", "/users", "/audit",
         "/reply-pages/1", "/letters/1/attachments/1"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_login_without_a_session(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_htmx_fragment_without_session_asks_htmx_to_go_to_login(app):
    response = app.test_client().get("/overview/live", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"


def test_every_write_is_refused_without_a_session(app):
    # The one-click unsubscribe is public by design: a token we did not sign is refused.
    assert app.test_client().post("/unsubscribe/1.2.3").status_code == 404
    writes = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods
              and rule.endpoint not in ("auth.login", "unsubscribe.one_click")]
    assert len(writes) >= 15
    client = app.test_client()
    for rule in writes:
        path = rule.rule.replace("<int:letter_id>", "1").replace("<int:reply_id>", "1") \
            .replace("<int:prisoner_id>", "1").replace("<int:user_id>", "1")
        response = client.post(path, data={})
        assert response.status_code in (400, 401), (path, response.status_code)


def test_login_lands_on_overview_and_logout_ends_the_session(app):
    client = app.test_client()
    response = login(client, "admin")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_and_logged(app, sessions):
    client = app.test_client()
    response = login(client, "admin", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    with sessions() as session:
        failures = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "login_failed")).all()
    assert [f.username for f in failures] == ["admin"]


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(app):
    response = login(app.test_client(), "nobody")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)


def test_login_is_throttled_after_repeated_failures(app):
    client = app.test_client()
    for _ in range(5):
        assert login(client, "admin", "guess").status_code == 401
    # Even the right password is refused while the name is throttled.
    response = login(client, "admin")
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(app):
    response = app.test_client().post("/login", data={"username": "admin",
                                                      "password": PASSWORD})
    assert response.status_code == 400


def test_post_without_csrf_token_is_refused_even_when_logged_in(as_user, seed):
    letter_id = seed.letter("HELD")
    client = as_user("admin")
    response = client.post(f"/moderation/{letter_id}/approve", data={})
    assert response.status_code == 400
    assert seed.get(letter_id).state == "HELD"


def test_deactivated_user_is_cut_off_at_the_next_request(app, as_user, sessions):
    client = as_user("moderator")
    assert client.get("/").status_code == 200
    with sessions() as session:
        session.scalar(select(User).where(User.username == "moderator")).active = False
        session.commit()
    assert client.get("/").status_code == 302


def test_open_redirect_after_login_is_not_followed(app):
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x",
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_viewer_cannot_reach_admin_pages(as_user):
    client = as_user("viewer")
    assert client.get("/users").status_code == 403
    assert client.get("/audit").status_code == 403


def test_create_user_hashes_with_argon2_and_refuses_duplicates(sessions):
    with sessions() as session:
        user = create_user(session, "olga", "long enough pw", "moderator")
        assert user.password_hash.startswith("$argon2id$")
        assert "long enough pw" not in user.password_hash
        with pytest.raises(ValueError, match="already exists"):
            create_user(session, "olga", "another password")
        with pytest.raises(ValueError, match="role"):
            create_user(session, "pavel", "long enough pw", "owner")


def test_security_headers_on_every_page(as_user):
    response = as_user("viewer").get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html  # nothing inline for the CSP to block


def _age_sessions(sessions, username: str, *, seen: float = 0, created: float = 0) -> None:
    """Move a user's sessions back in time (hours) on the server, where expiry is decided."""
    with sessions() as db:
        for row in db.scalars(select(WebSession).join(User).where(User.username == username)):
            row.seen_at -= timedelta(hours=seen)
            row.created_at -= timedelta(hours=created)
        db.commit()


def _seen_at(sessions, username: str):
    with sessions() as db:
        return db.scalar(select(WebSession.seen_at).join(User).where(User.username == username))


def test_idle_session_expires_on_the_server(as_user, sessions):
    client = as_user("viewer")
    _age_sessions(sessions, "viewer", seen=3)  # idle for three hours
    assert client.get("/").status_code == 302
    with sessions() as db:  # and the row is gone, not only refused
        assert db.scalar(select(func.count()).select_from(WebSession)) == 0


def test_old_session_expires_even_when_active(as_user, sessions):
    client = as_user("viewer")
    _age_sessions(sessions, "viewer", created=13)
    assert client.get("/").status_code == 302


def test_live_polling_does_not_keep_an_idle_session_alive(as_user, sessions):
    client = as_user("viewer")
    _age_sessions(sessions, "viewer", seen=1)
    seen = _seen_at(sessions, "viewer")
    assert client.get("/overview/live", headers={"HX-Request": "true"}).status_code == 200
    assert _seen_at(sessions, "viewer") == seen
    client.get("/")
    assert _seen_at(sessions, "viewer") > seen
