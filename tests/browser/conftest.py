"""The running gateway for browser tests: the e2e Stack (Dovecot, Redis, SMTP sink,
simulator, real worker / beat / inbox watcher processes) plus the dashboard served by
`gateway web` (gunicorn) as its own process, and Debian's Chromium driven by Playwright.

One stack per test module (starting it costs seconds); each test gets a fresh browser
context, so cookies never leak between tests."""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery staple"
USERS = {"admin": "admin", "mod1": "moderator", "mod2": "moderator", "viewer": "viewer"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebStack(Stack):
    """The e2e stack with the dashboard as one more real process."""

    COMMANDS = {**Stack.COMMANDS,
                "web": ["-m", "gateway.cli", "web", "--workers", "1"]}

    def __init__(self, *args, **kw) -> None:
        self.web_port = free_port()
        kw["extra_env"] = {
            "GATEWAY_WEB_HOST": "127.0.0.1", "GATEWAY_WEB_PORT": str(self.web_port),
            # Settled counts read fresh on every refresh, so the overview follows the test.
            "GATEWAY_FLASK_OVERVIEW_SETTLED_SECONDS": "0",
            # A match only suggested by a person needs a second organizer's word.
            "GATEWAY_REPLY_MATCH_CONFIRMATIONS": "2",
            # These tests read English texts; Russian (the default) is tests/dashboard/test_i18n.py.
            "GATEWAY_FLASK_DASHBOARD_DEFAULT_LOCALE": "en",
            **kw.get("extra_env", {}),
        }
        super().__init__(*args, **kw)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self) -> None:
        self.start_process("web")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.web_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the dashboard did not answer\n" + self.log("web"))


@contextmanager
def running_stack(dovecot, redis_server, **extra_env: str) -> Iterator[WebStack]:
    """The whole gateway and its dashboard, with the USERS, on fresh servers."""
    if redis_server.paused:
        redis_server.resume()
    dovecot.reset()
    with redis_server.client() as client:
        client.flushall()
    root = Path(tempfile.mkdtemp(prefix="gw-browser-"))
    stack = WebStack(root, dovecot, redis_server.url, f"sqlite:///{root / 'gateway.db'}",
                     extra_env=extra_env)
    try:
        stack.start()
        for name, role in USERS.items():
            stack.gateway("user", "add", name, "--role", role, "--password", PASSWORD)
        stack.start_web()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(dovecot, redis_server) -> Iterator[WebStack]:
    with running_stack(dovecot, redis_server) as stack:
        yield stack


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Organizer:
    """One person at the dashboard: their own browser context (cookies) and page."""

    def __init__(self, browser, base: str, username: str, **context_options) -> None:
        self.base, self.username = base, username
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           **context_options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        # A CSP violation or a script error shows up here: pages must have none.
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def log_in(self) -> Organizer:
        from playwright.sync_api import expect
        self.page.goto(self.base + "/")
        expect(self.page).to_have_url(re.compile(r"/login\?next=/$"))
        self.page.fill("#username", self.username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        expect(self.page.locator("h1")).to_have_text("Overview")
        return self

    def go(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def organizer(chromium, stack) -> Iterator:
    people: list[Organizer] = []

    def make(username: str) -> Organizer:
        person = Organizer(chromium, stack.web_url, username).log_in()
        people.append(person)
        return person

    yield make
    for person in people:
        person.close()


def http_session(base: str, username: str) -> httpx.Client:
    """A logged-in HTTP client (no browser): for sweeping every route."""
    client = httpx.Client(base_url=base, timeout=10, follow_redirects=False)
    token = CSRF_RE.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "csrf_token": token})
    assert r.status_code == 302, r.text
    return client
