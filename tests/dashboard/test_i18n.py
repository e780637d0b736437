"""The dashboard in Russian by default and in English on a switch (issue #15, item 5).

The catalogue: every string the source marks has a Russian translation with all three plural
forms and the same placeholders, and the compiled .mo is the .po of today. Then a real
Chromium crawls every page each role can reach, in Russian and in English, at a phone's
390 px: no page is wider than the phone, no Latin word is left on a Russian page except an
explicit allow-list (usernames, codes, acronyms), and the English pages are English."""

from __future__ import annotations

import gettext
import io
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from werkzeug.serving import make_server

from gateway.models import Campaign, Evening, utcnow
from gateway.web import labels
from gateway.web.i18n import COOKIE, TRANSLATIONS_DIR

from .conftest import HELD_FINDINGS, PASSWORD, csrf_token

pytestmark = [pytest.mark.dashboard, pytest.mark.i18n]

ROOT = Path(__file__).resolve().parents[2]
PO = TRANSLATIONS_DIR / "ru" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "artifacts" / "i18n"  # git-ignored, for a person to look at
PHONE = {"width": 390, "height": 844}
ROLES = ("admin", "moderator", "viewer", "volunteer")


# -- the catalogue --------------------------------------------------------------------------

def extracted() -> dict[str | tuple[str, str], set[str]]:
    """What pybabel extract finds, with the same babel.cfg and keywords as
    scripts/translations: msgid (or (singular, plural)) -> where."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "N_": None,
                "lazy_gettext": None}
    found: dict = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        if filename.startswith(("gateway/web", "templates/dashboard")):
            found.setdefault(message, set()).add(filename)
    return found


def test_every_marked_string_has_a_whole_russian_translation():
    with open(PO, "rb") as f:
        catalog = read_po(f, locale="ru")
    assert catalog.num_plurals == 3, catalog.plural_forms
    assert not catalog.fuzzy, "the catalogue header is marked fuzzy"
    found = extracted()
    assert len(found) > 500, "the extractor found almost nothing: is babel.cfg read?"
    problems = []
    for key, where in sorted(found.items(), key=str):
        msgid = key[0] if isinstance(key, tuple) else key
        message = catalog.get(msgid)
        if message is None or not message.string or not any(message.string):
            problems.append(f"untranslated: {key!r} ({', '.join(sorted(where))})")
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        if isinstance(key, tuple):
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if len(forms) != 3 or not all(forms):
                problems.append(f"needs 3 plural forms: {msgid!r} -> {forms!r}")
            wanted = set(PLACEHOLDER.findall(key[1])) | set(PLACEHOLDER.findall(key[0]))
            for form in forms:
                if set(PLACEHOLDER.findall(form)) != wanted:
                    problems.append(f"placeholders differ: {msgid!r} -> {form!r}")
        else:
            if set(PLACEHOLDER.findall(message.string)) != set(PLACEHOLDER.findall(msgid)):
                problems.append(f"placeholders differ: {msgid!r} -> {message.string!r}")
    stale = [m.id for m in catalog if m.id and (m.id if not m.pluralizable else tuple(m.id))
             not in found and m.id not in found]
    assert not problems, "\n".join(problems)
    assert not stale, f"run scripts/translations: entries no longer in the source: {stale}"


def test_the_compiled_catalogue_is_the_po_of_today():
    with open(PO, "rb") as f:
        catalog = read_po(f, locale="ru")
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    with open(MO, "rb") as f:
        shipped = gettext.GNUTranslations(f)
    compiled = gettext.GNUTranslations(fresh)
    assert shipped._catalog == compiled._catalog, \
        "messages.mo is stale: run scripts/translations and commit the .mo"


# -- plurals, dates, money, the switch --------------------------------------------------------

@pytest.fixture
def ru_app(app):
    app.config["DASHBOARD_DEFAULT_LOCALE"] = "ru"  # what a deployment gets (conftest says en)
    return app


def test_russian_plurals_dates_and_money(ru_app):
    from flask_babel import ngettext

    from gateway.web.formatting import age, money, when
    with ru_app.test_request_context("/"):
        words = [ngettext("%(num)d letter", "%(num)d letters", n) for n in (1, 2, 5, 11, 21, 22)]
        assert words == ["1 письмо", "2 письма", "5 писем", "11 писем", "21 письмо", "22 письма"]
        assert money(Decimal("1234.5")).replace("\u00a0", " ") == "1 234,50 ₽"
        assert when(utcnow().replace(year=2026, month=3, day=8, hour=9, minute=5)) \
            == "8 мар. 2026, 09:05 UTC"
        assert age(timedelta(minutes=12)) == "12 мин"
    with ru_app.test_request_context("/", headers={"Cookie": f"{COOKIE}=en"}):
        assert ngettext("%(num)d letter", "%(num)d letters", 1) == "1 letter"
        assert money(Decimal("1234.5")) == "₽1,234.50"
        assert age(timedelta(minutes=12)) == "12 min"


def test_russian_by_default_and_english_on_the_switch(ru_app):
    client = ru_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="ru">' in page and "Войти" in page and "Log in" not in page
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/login")
    assert f"{COOKIE}=en" in switched.headers["Set-Cookie"]
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page and "Log in" in page
    # Remembered through login, and back.
    client.post("/login", data={"username": "moderator", "password": PASSWORD,
                                "csrf_token": csrf_token(client)})
    assert ">Overview</a>" in client.get("/").get_data(as_text=True)
    client.get("/lang/ru?next=/")
    page = client.get("/").get_data(as_text=True)
    assert ">Обзор</a>" in page and ">Overview</a>" not in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "evil", ""])
def test_the_switch_is_no_open_redirect(ru_app, target):
    response = ru_app.test_client().get("/lang/en", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_an_unknown_language_is_not_found(ru_app):
    assert ru_app.test_client().get("/lang/de").status_code == 404


def test_labels_cover_every_stored_code():
    from gateway.states import LetterState, MailState, NoticeKind, Reason, ReplyState
    from gateway.web.accounts import Role
    for table, enum in ((labels.LETTER_STATES, LetterState), (labels.REPLY_STATES, ReplyState),
                        (labels.MAIL_STATES, MailState), (labels.NOTICE_KINDS, NoticeKind),
                        (labels.REASONS, Reason), (labels.ROLES, Role)):
        assert set(table) == {e.value for e in enum}, enum.__name__
    from gateway.connection_health import LABELS
    from gateway.web.overview import TRANSPORT_WORDS
    assert set(LABELS.values()) <= set(TRANSPORT_WORDS)


# -- the crawl ------------------------------------------------------------------------------

# GET pages not crawled, and why. Everything else in app.url_map is visited.
NOT_PAGES = {
    "static": "files", "metrics.healthz": "plain text", "metrics.metrics": "Prometheus text",
    "i18n.switch": "a redirect (tested above)", "twofactor.qr": "an SVG image",
    "desk.photo": "an image", "letters.attachment": "a file", "letters.reply_page": "an image",
    "desk.batch_pdf": "a PDF", "prisoners.export_csv": "a CSV file",
    "campaigns.story_csv": "a CSV file",
    "auth.second_factor": "only with a half-finished login (tests/dashboard/test_privacy.py)",
    "overview.live": "a fragment of the overview, crawled inside it",
    "campaigns.campaign_live": "a fragment of the campaign page, crawled inside it",
    "campaigns.evening_live": "a fragment of the evening page, crawled inside it",
    "unsubscribe.confirm": "a writer's page behind a signed token, bilingual like the e-mails "
                           "(tests/campaigns/test_unsubscribe.py)",
}
# Pages for writers, not organizers: Russian first and English below whatever the switch says
# (like the e-mails); crawled for width and for untranslated Russian only.
FOR_WRITERS = ("/print",)
# Latin words a Russian page may show: acronyms and names, usernames and data the crawl
# seeds (provider codes as stored), the language switch.
ALLOWED_LATIN = {
    "imap", "smtp", "csv", "pdf", "xlsx", "json", "qr", "totp", "utc", "http", "https", "html",
    "markdown", "redis", "utf", "windows", "id", "en", "ru", "fsin", "pismo", "zonatelecom",
    "zt", "desk", "post", "letters", "tag", "help", "fp",
    *ROLES,
}
# Seeded data with Latin letters, and e-mail addresses, are taken out before the check.
# "E-mail" is how the services' own Russian forms name the field the desk copies into.
SEEDED = ("ve-i18n", "vesna", "FP-2026", "E-mail")
EMAIL = re.compile(r"\S+@\S+")
# Raw codes may stay in a title (for support) or in <code>: every stored code we label.
CODES = {c.lower() for table in (labels.LETTER_STATES, labels.REPLY_STATES, labels.MAIL_STATES,
                                 labels.NOTICE_KINDS, labels.REASONS, labels.SEVERITIES,
                                 labels.FIELDS, labels.PRISONER_STATUSES, labels.ROLES,
                                 labels.REPLY_SOURCES)
         for c in table} | {"birthday"}
# Data, not interface: what the pipeline recorded (English notes), addresses, numbers, codes,
# the writer's own texts (the guide's English half), the language switch.
EXCLUDED = ".machine-note, body [lang=en], code, .mono, .who .name, .lang-switch, textarea, " \
           "select[name=reason] option, #figures .muted code"
TEXTS_JS = """excluded => {
  const out = [], attrs = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest('script, style, template') || p.closest(excluded)) continue;
    const t = n.nodeValue.trim();
    if (t) out.push(t);
  }
  for (const el of document.querySelectorAll('*')) {
    if (el.closest(excluded)) continue;
    for (const a of ['placeholder', 'title', 'aria-label', 'alt', 'data-confirm', 'data-copied']) {
      const v = el.getAttribute(a);
      if (v) attrs.push([a, v]);
    }
    if (el.matches('input[type=submit], input[type=button]') && el.value) out.push(el.value);
  }
  out.push(document.title);
  return {texts: out, attrs: attrs, lang: document.documentElement.lang,
          width: document.documentElement.scrollWidth};
}"""
# A word; one with a digit or an underscore is an identifier (IVA1, 8marta, reveal_address).
LATIN_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_'’]*")


def latin_words(text: str) -> list[str]:
    text = EMAIL.sub(" ", text)
    for data in SEEDED:
        text = text.replace(data, " ")
    return [w for w in LATIN_WORD.findall(text) if re.search("[A-Za-z]", w) and
            not re.search(r"[0-9_]", w) and w.lower() not in ALLOWED_LATIN]


def latin_leftovers(found: dict) -> list[str]:
    words = [w for text in found["texts"] for w in latin_words(text)]
    for name, value in found["attrs"]:
        if name == "title" and value.lower() in CODES:
            continue  # the stored code beside its label, for support
        words += latin_words(value)
    return sorted(set(words))


@pytest.fixture
def world(seed, sessions):
    """One of everything a page can show: letters in the states that have pages, a reply,
    a campaign, an evening, a letter in the volunteer's hands at the desk."""
    from .test_browser import scan_png
    ids = {
        "held": seed.letter("HELD", findings=HELD_FINDINGS, reason="held for a person: rally"),
        "failed": seed.letter("FAILED", reason="provider refused: facility closed"),
        "unknown": seed.letter("UNKNOWN", reason="timeout after the request left"),
        "quarantined": seed.letter("QUARANTINED", reason="truncated MIME", writer="x@y.z"),
        "submitted": seed.submitted("FP-2026-000001", price="1234.50"),
        "desk": seed.letter("DESK", provider="desk", leased_by="volunteer",
                            lease_until=utcnow() + timedelta(hours=1)),
        "reply": seed.unmatched_reply("FP-2026-00000S", scan_png()),
    }
    seed.letter("READY")
    seed.letter("DESK", provider="desk")
    with sessions() as session:
        campaign = Campaign(title="К весне", tag="vesna", budget_rub=Decimal(1000),
                            starts_on=date.today(), ends_on=date.today() + timedelta(days=30),
                            guidance="Пишите о весне.")
        session.add(campaign)
        session.flush()
        evening = Evening(code="ve-i18n", city="Ереван", place="Библиотека",
                          held_on=date.today(), campaign_id=campaign.id)
        session.add(evening)
        session.commit()
        ids |= {"campaign": campaign.id, "evening": evening.id}
    ids["prisoner"] = seed.prisoner_id
    return ids


def page_urls(app, world) -> list[str]:
    """Every GET page in the url_map, ids filled from the seeded world."""
    fill = {"letter_id": world["held"], "prisoner_id": world["prisoner"],
            "campaign_id": world["campaign"], "evening_id": world["evening"]}
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
            continue
        missing = set(rule.arguments) - set(fill)
        assert not missing, f"{rule.rule}: no seeded id for {missing}; seed one or list it"
        values = {k: fill[k] for k in rule.arguments}
        if rule.endpoint == "desk.show":
            values["letter_id"] = world["desk"]
        urls.append(rule.build(values, append_unknown=False)[1])
    for extra in (f"/letters/{world['failed']}", f"/letters/{world['submitted']}",
                  "/letters/999999"):  # the 404 page too
        urls.append(extra)
    return sorted(set(urls))


@pytest.fixture
def served(ru_app):
    server = make_server("127.0.0.1", 0, ru_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    from .test_browser import ARGS
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


def test_every_page_for_every_role_in_both_languages_fits_a_phone(ru_app, world, served,
                                                                  chromium):
    urls = page_urls(ru_app, world)
    assert len(urls) > 25, urls
    problems: list[str] = []
    visited = 0
    for role in ROLES:
        for lang in ("ru", "en"):
            context = chromium.new_context(viewport=PHONE)
            if lang == "en":
                context.add_cookies([{"name": COOKIE, "value": "en", "url": served}])
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
            page.goto(served + "/login")
            check(page, f"{role}/{lang} /login", lang, problems)
            page.fill("#username", role)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            seen = set()
            for url in urls:
                response = page.goto(served + url)
                assert response is not None and response.status < 500, (role, url)
                landed = page.url.removeprefix(served)
                if landed in seen:  # a volunteer sent back to the desk, say
                    continue
                seen.add(landed)
                visited += 1
                check(page, f"{role}/{lang} {url}", lang, problems)
            # The 403 and 404 pages (a role's limits, /letters/999999) log their status.
            problems += [f"{role}/{lang}: console: {e}" for e in errors
                         if not e.startswith("Failed to load resource")]
            context.close()
    assert visited > 60, visited
    assert not problems, "\n".join(problems)


def check(page, where: str, lang: str, problems: list[str]) -> None:
    # In English nothing is left out: the whole page is read for English words.
    found = page.evaluate(TEXTS_JS, EXCLUDED if lang == "ru" else "template")
    if found["width"] > PHONE["width"]:
        problems.append(f"{where}: {found['width']} px wide on a {PHONE['width']} px phone")
    if where.endswith(FOR_WRITERS):
        lang = "ru"
        found = page.evaluate(TEXTS_JS, EXCLUDED)
    if found["lang"] != lang:
        problems.append(f"{where}: <html lang={found['lang']!r}>")
    if lang == "ru":
        if words := latin_leftovers(found):
            problems.append(f"{where}: English left on a Russian page: {words}")
    else:
        english = " ".join(found["texts"])
        if not re.search(r"\b(Log in|Log out|Desk|Overview)\b", english):
            problems.append(f"{where}: does not read as English")


MAIN_PAGES = {"overview": "/", "moderation": "/moderation", "desk": "/desk",
              "letter": "/letters/{held}", "prisoners": "/prisoners",
              "campaign": "/campaigns/{campaign}", "evening": "/evenings/{evening}",
              "failures": "/failures", "replies": "/replies"}


def test_screenshots_of_the_main_pages_in_russian(world, served, chromium):
    """Not an assertion but evidence: the main pages at a phone's and a desk's width, for a
    person to look at (tests/dashboard/artifacts/i18n/)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((390, 844), (1280, 900)):
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(served + "/login")
        page.screenshot(path=str(SHOTS / f"login-{width}.png"), full_page=True)
        page.fill("#username", "moderator")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, url in MAIN_PAGES.items():
            page.goto(served + url.format(**world))
            assert page.evaluate("document.documentElement.lang") == "ru"
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        context.close()
    assert len(list(SHOTS.glob("*.png"))) >= 2 * (len(MAIN_PAGES) + 1)


def test_the_crawl_check_sees_english_and_spares_data():
    found = {"texts": ["Письмо №3 · Approve", "m***@e***.org", "IVA1 · FP-2026-000001", "UTC"],
             "attrs": [["title", "HELD"], ["title", "Held for a person"],
                       ["placeholder", "reveal_address"]]}
    assert latin_leftovers(found) == ["Approve", "Held", "a", "for", "person"]


def test_the_overviews_alerts_read_russian(ru_app, seed, sessions):
    from gateway.models import Cursor
    from gateway.web.overview import compute
    seed.letter("FAILED", reason="provider refused: facility closed")
    with sessions() as session:
        session.add(Cursor(name="tls:smtp", value="certificate is not trusted"))
        session.commit()
        with ru_app.test_request_context("/"):
            texts = [a.text for a in compute(session, queues={}).alerts()]
    assert "1 — «Ошибка отправки»: письма, которые сервис не принял" in texts, texts
    assert any(t.startswith("Исходящая почта (SMTP) отказывает с ") and
               t.endswith("UTC: certificate is not trusted") for t in texts), texts
    assert "Сборщик почты ни разу не выходил на связь: новые письма не забираются" in texts
