"""One real browser: Debian's Chromium, headless, against the dashboard served over HTTP.

Log in, read the overview (and see it refresh by itself), approve a held letter, and leave
screenshots in tests/dashboard/artifacts/ for a person to look at."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.pages import image_width

from .conftest import HELD_FINDINGS, PASSWORD

pytestmark = [pytest.mark.dashboard, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def scan_png() -> bytes:
    """A small stand-in for a scanned reply page."""
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (300, 420), "#fbf8f0")
    draw = ImageDraw.Draw(image)
    draw.text((20, 20), "No FP-2026-00000S", fill="#223")
    for y in range(60, 400, 18):
        draw.line((20, y, 280, y), fill="#b9c2d0")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def browser_page():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        # A CSP violation or a script error shows up here: the page must have none.
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors
        yield page
        browser.close()


def test_log_in_see_overview_and_approve_a_held_letter(served, browser_page, seed):
    from playwright.sync_api import expect
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    held = seed.letter("HELD", body="Дорогой Иван! Слышали про митинг? Держитесь.",
                       findings=HELD_FINDINGS, reason="held for a person: mentions a rally")
    seed.letter("HELD", body="Второе письмо на проверке.", findings=HELD_FINDINGS)
    seed.letter("FAILED", reason="provider refused: facility closed")
    seed.letter("UNKNOWN", reason="timeout after the request left")
    seed.letter("READY")
    seed.letter("DESK", provider="desk")
    seed.letter("QUARANTINED", reason="could not read the message: truncated MIME", writer="x@y.z")
    for n in range(1, 6):
        seed.submitted(f"FP-2026-{n:06d}", price="312.50")
    seed.unmatched_reply("FP-2026-00000S", scan_png())

    page.goto(served + "/")
    expect(page).to_have_url(served + "/login?next=/")
    page.fill("#username", "moderator")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    needs = page.locator("a.tile", has_text="To moderate")
    expect(needs.locator(".n")).to_have_text("2")
    expect(page.locator(".alerts")).to_contain_text("1 Failed")

    # The live part refreshes itself: a letter added now appears without a reload.
    seed.letter("HELD", body="Третье.", findings=HELD_FINDINGS)
    expect(needs.locator(".n")).to_have_text("3", timeout=12_000)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    page.click("nav >> text=Moderation")
    card = page.locator(f"#letter-{held}")
    expect(card.locator("mark")).to_have_text("митинг")
    page.screenshot(path=str(ARTIFACTS / "moderation.png"), full_page=True)
    card.locator("button", has_text="Approve").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{held} approved")
    expect(page.locator(f"#letter-{held}")).to_have_count(0)

    page.goto(f"{served}/letters/{held}")
    expect(page.locator("h1")).to_contain_text("Ready to send")
    expect(page.locator(".timeline")).to_contain_text("moderator")
    page.screenshot(path=str(ARTIFACTS / "letter.png"), full_page=True)

    for name in ("failures", "desk", "replies", "prisoners", "letters"):
        page.goto(f"{served}/{name}")
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.goto(f"{served}/replies")
    expect(page.locator(".scans img")).to_have_count(1)
    assert image_width(page.locator(".scans img")) == 300

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(served + "/")
    page.screenshot(path=str(ARTIFACTS / "overview-phone.png"), full_page=True)

    assert seed.get(held).state == "READY"
    assert seed.events(held)[-1].actor == "moderator"
    assert page.console_errors == []
