"""A campaign and a letter evening at the dashboard, in Debian's Chromium, on the real
pipeline: an organizer creates a campaign by filter, letters tagged for it arrive by IMAP
and its page fills by itself (htmx polling), also on a phone; an evening is created for it
and its table card prints to PDF with the address and the QR code."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from tests.e2e.stack import WARM, letter

pytestmark = [pytest.mark.browser, pytest.mark.campaigns, pytest.mark.timeout(240)]


def test_create_a_campaign_watch_it_fill_and_print_the_evening(stack, organizer, tmp_path):
    mod = organizer("mod1")
    page = mod.go("/campaigns")
    page.click("text=New campaign")
    page.fill("#title", "Москвичкам к весне")
    page.fill("#tag", "vesna")
    page.fill("#region", "Москва")
    page.fill("#guidance", "Поздравьте с весной, расскажите о своём городе.")
    page.click("form.panel button[type=submit]")
    expect(page.locator("h1")).to_have_text("Москвичкам к весне")
    expect(page.locator("#campaign-address")).to_contain_text("letters+vesna@")
    rows = page.locator("#per-prisoner tbody tr")
    moscow = rows.count()
    assert moscow >= 1
    letters_in = page.locator("[data-count='Letters in'] .n")
    expect(letters_in).to_have_text("0")

    for i in range(3):
        stack.send(letter("[vesna] Любому", WARM + f"\n\nP.S. {i}",
                          sender=f"Writer {i} <w{i}@example.org>"))
    # No reload: the live part polls every 5 s.
    expect(letters_in).to_have_text("3", timeout=60_000)
    expect(page.locator("[data-count='Checked'] .n")).to_have_text("3", timeout=60_000)
    chosen = stack.query("SELECT DISTINCT p.region FROM letters l "
                         "JOIN prisoners p ON p.id = l.prisoner_id")
    assert chosen and all("Москва" in r["region"] for r in chosen), chosen
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the campaign page scrolls sideways on a phone ({width}px)"
    mod.shot("campaign-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page = mod.go("/evenings/new")
    page.fill("#city", "Тбилиси")
    page.fill("#place", "Кафе «Книги»")
    page.fill("#held_on", date.today().isoformat())
    page.select_option("#campaign_id", label="Москвичкам к весне")
    page.click("form.panel button[type=submit]")
    code = page.locator("#evening-code").inner_text()
    assert code.startswith("ve-")
    page.click("text=Printable page")
    expect(page.locator("#print-address")).to_have_text(
        f"letters+{code}@gateway.local")
    expect(page.locator(".qr svg")).to_be_visible()
    pdf = tmp_path / "evening.pdf"
    page.emulate_media(media="print")
    page.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 2000
    assert mod.errors == [], mod.errors  # no CSP violation, no script error
