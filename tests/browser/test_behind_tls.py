"""The dashboard as a team reaches it: Debian's Chromium → HTTPS → a TLS-terminating proxy
that sets X-Forwarded-Proto → gunicorn, with GATEWAY_WEB_PROXY_HOPS=1 (issue 11, item 5).
Login and every write pass Flask-WTF's CSRF check (which on HTTPS wants a same-origin
Referer); a session cookie copied before logout is dead after it; TOTP login works;
/metrics is refused without its token. The host name is a real-looking one (resolved to
127.0.0.1 inside Chromium), so nothing leans on loopback exceptions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.stack import letter
from tests.pages import image_width

from .conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, Organizer, running_stack
from .test_organizer import row, states, warm
from .test_safety import ROUTES
from .tls_proxy import TLSProxy

pytestmark = [pytest.mark.browser, pytest.mark.privacy, pytest.mark.timeout(300)]

HOST = "dash.example.test"
METRICS_TOKEN = "prometheus-scrape-" + "k" * 24
WRITERS = {"held": "galina@example.org", "returned": "pavel@example.org"}
NO_SUCH = 999999  # ids in the sweep: the write is refused by the view (404), after CSRF


@pytest.fixture(scope="module")
def proxied(dovecot, redis_server, tmp_path_factory) -> Iterator:
    with running_stack(dovecot, redis_server, GATEWAY_WEB_PROXY_HOPS="1",
                       GATEWAY_METRICS_TOKEN=METRICS_TOKEN) as stack:
        proxy = TLSProxy(stack.web_port, tmp_path_factory.mktemp("tls"), HOST).start()
        stack.https_url = f"https://{HOST}:{proxy.port}"
        try:
            yield stack, proxy
        finally:
            proxy.stop()


@pytest.fixture(scope="module")
def tls_browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"])
        yield chromium
        chromium.close()


@pytest.fixture
def person(tls_browser, proxied) -> Iterator:
    stack, _ = proxied
    people: list[Organizer] = []

    def make(username: str, *, log_in: bool = True) -> Organizer:
        someone = Organizer(tls_browser, stack.https_url, username, ignore_https_errors=True)
        people.append(someone)
        return someone.log_in() if log_in else someone

    yield make
    for someone in people:
        someone.close()


def session_cookie(someone: Organizer) -> dict:
    return next(c for c in someone.context.cookies() if c["name"] == "gw_session")


SWEEP = """async ([urls, policy]) => {
  const token = document.querySelector("input[name=csrf_token]").value;
  const out = [];
  for (const url of urls) {
    const body = new FormData();
    body.append("csrf_token", token);
    const init = {method: "POST", body, redirect: "manual", credentials: "same-origin"};
    if (policy) init.referrerPolicy = policy;
    const r = await fetch(url, init);
    out.push([url, r.status, r.type, r.status >= 400 ? await r.text() : ""]);
  }
  return out;
}"""


def post_urls() -> list[str]:
    """Every POST route of the app, with ids nobody has; logout is clicked at the end."""
    out = []
    for endpoint, method, url in ROUTES:
        if method == "POST" and endpoint != "auth.logout":
            out.append(re.sub(r"/1(?=/|$)", f"/{NO_SUCH}", url))
    return out


def test_login_and_every_write_work_behind_the_tls_proxy(proxied, person):
    stack, proxy = proxied
    stack.send(letter("Петровой Марии Сергеевне",
                      warm("Мария", "Как прошёл суд? Адвокат говорит, апелляция скоро."),
                      sender=f"Галина <{WRITERS['held']}>"))
    stack.send(letter("Иванову Ивану", warm("Иван", "Мы все против войны."),
                      sender=f"Павел <{WRITERS['returned']}>"))
    stack.wait("two letters held", lambda: sorted(states(stack).values()) == ["HELD", "HELD"],
               timeout=90)
    held = row(stack, "Петровой Марии Сергеевне")
    returned = row(stack, "Иванову Ивану")

    admin = person("admin")  # the login form itself is a POST through the proxy
    assert any(line.startswith("POST /login") for line in proxy.requests)
    cookie = session_cookie(admin)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"].startswith("s1.")
    page = admin.page

    # -- the writes an evening needs, clicked -----------------------------------------
    admin.go("/moderation")
    page.locator(f"#letter-{held['id']}").get_by_role("button", name="Approve").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{held['id']} approved")
    card = page.locator(f"#letter-{returned['id']}")
    card.locator("summary", has_text="Return to writer").click()
    card.locator("select[name=template]").select_option(index=1)
    card.get_by_role("button", name="Return with this reason").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{returned['id']} returned")
    stack.wait("the approved letter at the simulator",
               lambda: [m for m in stack.sim_letters() if "апелляция" in m["text"]])
    assert row(stack, "Иванову Ивану")["state"] == "REJECTED"

    admin.go(f"/letters/{held['id']}")
    page.locator("summary", has_text="Reveal the address").click()
    page.fill("#reveal-reason", "the writer asked us to check a bounce")
    page.get_by_role("button", name="Reveal", exact=True).click()
    expect(page.locator(".revealed")).to_have_text(WRITERS["held"])

    admin.go("/users")
    page.fill("#nu", "newcomer")
    page.fill("#np", "a long enough passphrase")
    page.select_option("#nr", "moderator")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".flash.ok")).to_have_text("Added newcomer (moderator).")
    page.get_by_role("button", name="Log viewer out everywhere").click()
    expect(page.locator(".flash.ok")).to_contain_text("viewer: 0 session(s) ended")

    admin.go("/prisoners/new")
    for field, value in {"code": "TLS1", "last_name": "Смирнов", "first_name": "Олег",
                         "birth_year": "1975", "region": "Москва",
                         "facility_name": "ИК-2 Москва", "facility_id": "77-ik-2"}.items():
        page.fill(f"#{field}", value)
    page.locator("form.panel button[type=submit]").click()
    expect(page.locator(".flash.ok")).to_contain_text("Смирнов")

    assert admin.errors == []  # no CSP violation or script error on any page so far

    # -- and every POST route of the app: past CSRF with the page's own Referer -----------
    admin.go("/")
    urls = post_urls()
    assert len(urls) >= 15
    refused = [(url, status) for url, status, _type, text in page.evaluate(SWEEP, [urls, ""])
               if status == 400 and "security token" in text]
    assert refused == []
    admin.go("/")  # and no write was taken for an intruder's: the session is still there
    expect(page.locator("h1")).to_have_text("Overview")
    # The control: the same writes without a Referer (the old no-referrer policy) are all
    # refused, so it is the same-origin Referer that lets them through on HTTPS.
    blind = page.evaluate(SWEEP, [urls, "no-referrer"])
    # Except the one-click unsubscribe (RFC 8058: the writer's mail provider posts it, no
    # token of ours): CSRF-exempt by design, its signed URL is the authority, so a made-up
    # one is simply not found.
    exempt = [(u, status) for u, status, _t, _text in blind if u.startswith("/unsubscribe/")]
    assert exempt and all(status == 404 for _u, status in exempt), exempt
    assert [u for u, status, _t, text in blind if not u.startswith("/unsubscribe/")
            and not (status == 400 and "security token" in text)] == []

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("✉ Letters gateway")
    # The sweep's refusals show as failed loads in the console; nothing else may.
    assert [e for e in admin.errors if not e.startswith("Failed to load resource")] == []
    actions = {r["action"] for r in stack.query("SELECT action FROM audit_log")}
    assert {"approve", "return", "reveal_address", "add_user", "logout_everywhere",
            "edit_prisoner"} <= actions, actions


def test_a_session_stolen_before_logout_is_dead_after_it(proxied, person):
    owner = person("mod1")
    thief = person("mod2", log_in=False)  # another browser, no login of its own
    thief.context.add_cookies([session_cookie(owner)])
    thief.go("/")
    expect(thief.page.locator("h1")).to_have_text("Overview")
    expect(thief.page.locator(".who .name")).to_contain_text("mod1")

    owner.page.get_by_role("button", name="Log out").click()
    expect(owner.page).to_have_url(re.compile(r"/login$"))

    thief.go("/moderation")
    expect(thief.page).to_have_url(re.compile(r"/login\?next=/moderation$"))
    # The owner's browser kept no session token either (at most the login form's CSRF one).
    assert not [c for c in owner.context.cookies()
                if c["name"] == "gw_session" and c["value"].startswith("s1.")]
    stack, _ = proxied
    assert stack.query("SELECT count(*) AS n FROM web_sessions s JOIN users u "
                       "ON u.id = s.user_id WHERE u.username = 'mod1'")[0]["n"] == 0


def test_totp_login_in_chromium(proxied, person):
    mod = person("mod2")
    page = mod.page
    mod.go("/")
    page.get_by_role("link", name="Two-factor").click()
    qr = page.get_by_alt_text("QR code for the authenticator app")
    expect(qr).to_be_visible()
    assert image_width(qr) > 0
    secret = page.locator("#totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    page.fill("#code", totp.now())
    page.get_by_role("button", name="Turn it on").click()
    expect(page.locator(".flash.ok")).to_contain_text("Two-factor login is on")
    page.get_by_role("button", name="Log out").click()

    # The password alone now leads to the code form, and a wrong code is refused.
    page.goto(mod.base + "/moderation")
    page.fill("#username", "mod2")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login/code"))
    wrong = "000000" if totp.now() != "000000" else "111111"
    page.fill("#code", wrong)
    page.click("button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("That code is not right")
    page.goto(mod.base + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))  # nothing opened meanwhile
    page.goto(mod.base + "/login/code")
    expect(page).to_have_url(re.compile(r"/login/code"))
    # The enrolment used this time step's code; the next step's is within the drift window.
    page.fill("#code", totp.at(time.time() + 30))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    # The refused code's page answered 401: a failed load in the console, nothing else.
    assert [e for e in mod.errors if not e.startswith("Failed to load resource")] == []
    stack, _ = proxied
    actions = [r["action"] for r in stack.query(
        "SELECT action FROM audit_log WHERE username = 'mod2' ORDER BY id")]
    assert actions[-3:] == ["enable_totp", "login_failed", "login"], actions


def test_metrics_through_the_proxy_need_the_token_or_a_login(proxied, person):
    stack, proxy = proxied
    with httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", verify=str(proxy.cert),
                      headers={"Host": f"{HOST}:{proxy.port}"}) as anon:
        refused = anon.get("/metrics")
        assert refused.status_code == 401 and "gateway_letters" not in refused.text
        assert anon.get("/metrics", headers={"Authorization": "Bearer guess"}
                        ).status_code == 401
        scraped = anon.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200 and "gateway_letters" in scraped.text
        assert anon.get("/healthz").text == "ok"
    viewer = person("viewer")
    response = viewer.page.goto(viewer.base + "/metrics")
    assert response.status == 200 and "gateway_letters" in response.text()
