"""An evening at the dashboard, in Debian's Chromium, on letters the real pipeline made:
letters e-mailed to the inbox, checked by the rules, submitted to the simulator by the
worker; the organizers approve, return, type in at the desk, match a reply (two people,
because the match is only a person's reading), and import prisoners. Screenshots of every
main page land in tests/browser/artifacts/."""

from __future__ import annotations

import signal
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.e2e.stack import letter
from tests.pages import image_width

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ANNA, BORIS, VERA = "anna@example.org", "boris@example.org", "vera@example.org"
DESK_CSV = ("code,last_name,first_name,middle_name,birth_year,region,facility_name,"
            "facility_id,provider\n"
            "K201,Орлов,Дмитрий,Сергеевич,1987,Москва,ИК-6 Москва,77-ik-6,desk\n")
XSS = "<script>alert('xss')</script>"


def warm(name: str, extra: str) -> str:
    return (f"Здравствуйте, {name}!\n\nПишу вам из Петербурга. У нас выпал первый снег, и город "
            "стал тихим и светлым. Вечерами я читаю книги и вспоминаю лето. Мы все помним о "
            f"вас и ждём. Берегите себя и пишите, что вы сейчас читаете.\n\n{extra}\n\nОбнимаю")


def states(stack) -> dict[str, str]:
    return {r["subject"]: r["state"] for r in stack.query("SELECT subject, state FROM letters")}


def row(stack, subject: str) -> dict:
    return stack.query("SELECT * FROM letters WHERE subject = :s", s=subject)[0]


def test_an_evening_at_the_dashboard(stack, organizer, tmp_path):
    csv_path = tmp_path / "desk.csv"
    csv_path.write_text(DESK_CSV, encoding="utf-8")
    stack.gateway("prisoners", "import", str(csv_path))
    # Held (the case), held (the war, and markup), and one for the desk.
    stack.send(letter("Петровой Марии Сергеевне",
                      warm("Мария", "Как прошёл суд? Адвокат говорит, апелляция скоро."),
                      sender=f"Анна <{ANNA}>"))
    stack.send(letter("Иванову Ивану", warm("Иван", f"Мы все против войны. {XSS}"),
                      sender=f"Борис <{BORIS}>"))
    stack.send(letter("K201", warm("Дмитрий", "Передаю привет от всех друзей."),
                      sender=f"Вера <{VERA}>"))
    stack.wait("two letters held and one at the desk (or held before it)", lambda: sorted(
        states(stack).values()) in (["DESK", "HELD", "HELD"], ["HELD", "HELD", "HELD"]),
        timeout=90)
    held_a, held_b = row(stack, "Петровой Марии Сергеевне"), row(stack, "Иванову Ивану")
    desk_c = row(stack, "K201")
    held = sum(state == "HELD" for state in states(stack).values())

    mod1 = organizer("mod1")
    page = mod1.page
    expect(page.locator("a.tile", has_text="To moderate").locator(".n")).to_have_text(str(held))
    mod1.shot("overview")

    # -- moderation: flagged passages marked; markup in a letter is text, never HTML ------
    mod1.go("/moderation")
    card_a = page.locator(f"#letter-{held_a['id']}")
    card_b = page.locator(f"#letter-{held_b['id']}")
    expect(card_a.locator("mark").first).to_be_visible()
    expect(card_a.locator("mark", has_text="суд")).to_have_count(1)
    expect(card_b.locator("pre.letter-text")).to_contain_text(XSS)
    assert card_b.locator("script").count() == 0
    mod1.shot("moderation")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone, while letters wait
    mod1.shot("moderation-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    if desk_c["state"] == "HELD":
        # The checks know no profile called "desk" yet and hold the letter as unreachable;
        # an organizer approves it and the submission gate sends it to the desk.
        page.locator(f"#letter-{desk_c['id']}").get_by_role("button", name="Approve").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{desk_c['id']} approved")
        stack.wait("the desk letter at the desk", lambda: row(stack, "K201")["state"] == "DESK")
    card_a.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{held_a['id']} approved")
    at_provider = stack.wait("the approved letter at the simulator", lambda: [
        m for m in stack.sim_letters() if "апелляция" in m["text"]])
    assert len(at_provider) == 1 and at_provider[0]["recipient"]["last_name"] == "Петрова"

    own_words = "Цензор не пропустит разговор о войне; напишите, пожалуйста, о жизни."
    card_b.locator("summary", has_text="Return to writer").click()
    card_b.locator("select[name=template]").select_option(index=1)
    card_b.locator("textarea[name=own_words]").fill(own_words)
    card_b.get_by_role("button", name="Return with this reason").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Letter #{held_b['id']} returned")
    stack.wait("the writer's notice of the return, in the organizer's words", lambda: [
        m for m in stack.mail_to(BORIS)
        if own_words in m.message.get_body(("plain",)).get_content()])
    assert row(stack, "Иванову Ивану")["state"] == "REJECTED"

    # -- the desk: copy the fields, record the number the service gave --------------------
    mod1.go("/desk")
    page.locator("form.desk-queue", has_text="ИК-6 Москва").get_by_role(
        "button", name="Take a letter").click()
    card_c = page.locator(f"#desk-{desk_c['id']}")
    expect(card_c).to_contain_text("Орлов")
    expect(card_c).to_contain_text("ИК-6 Москва")
    expect(card_c.get_by_role("button", name="Copy").first).to_be_visible()
    mod1.shot("desk")
    card_c.locator("input[name=number]").fill("ФП-2026-000777")
    card_c.locator("input[name=price]").fill("120,50")
    card_c.get_by_role("button", name="Record as submitted").click()
    expect(page.locator(".flash.ok")).to_contain_text("ФП-2026-000777")
    done = row(stack, "K201")
    assert (done["state"], done["provider_number"], Decimal(str(done["price"]))) == \
        ("SUBMITTED", "ФП-2026-000777", Decimal("120.50"))
    stack.wait("the desk letter's 'sent' notice with its number", lambda: [
        m for m in stack.mail_to(VERA)
        if "ФП-2026-000777" in m.message.get_body(("plain",)).get_content()])

    # -- a reply with a number nobody can match; two organizers confirm the reading -------
    number = stack.wait("the approved letter SUBMITTED", lambda: row(
        stack, "Петровой Марии Сергеевне")["provider_number"])
    r = stack.sim("POST", f"/_sim/letters/{number}/reply",
                  json={"letter_number": "XX-0000-1", "by_email": False})
    assert r.status_code in (200, 201), r.text
    reply_id = stack.wait("the reply UNMATCHED", lambda: [
        x["id"] for x in stack.query("SELECT id, state FROM replies") if x["state"] == "UNMATCHED"])[0]
    mod1.go("/replies")
    card_r = page.locator(f"#reply-{reply_id}")
    expect(card_r).to_contain_text("XX-0000-1")
    scan = card_r.locator(".scans img").first
    expect(scan).to_be_visible()
    assert image_width(scan) > 0
    mod1.shot("replies")
    card_r.locator("input[name=number]").fill(number)
    card_r.get_by_role("button", name="Match").click()
    expect(page.locator(".flash.ok")).to_contain_text("second organizer")
    assert stack.query("SELECT state FROM replies WHERE id = :i", i=reply_id)[0]["state"] \
        == "UNMATCHED"
    # The same person cannot be the second pair of eyes.
    card_r = page.locator(f"#reply-{reply_id}")
    expect(card_r).to_contain_text("mod1")
    card_r.locator("input[name=number]").fill(number)
    card_r.get_by_role("button", name="Match").click()
    expect(page.locator(".flash.error")).to_contain_text("different organizer")

    mod2 = organizer("mod2")
    mod2.go("/replies")
    card_r2 = mod2.page.locator(f"#reply-{reply_id}")
    expect(card_r2.locator("input[name=number]")).to_have_value(number)
    card_r2.get_by_role("button", name="Confirm").click()
    expect(mod2.page.locator(".flash.ok")).to_contain_text("forwarded")

    def forwards():
        return [m for m in stack.mail_to(ANNA) if any(
            p.get_content_type().startswith("image/") for p in m.message.iter_attachments())]
    forward = stack.wait("the reply forwarded to the writer", forwards)[0]
    assert number in forward.message.get_body(("plain",)).get_content()

    # -- import prisoners through the page: preview, then apply -----------------------------
    soon = date.today() + timedelta(days=3)
    upload = ("code,last_name,first_name,middle_name,birth_year,birth_date,region,"
              "facility_name,facility_id,provider\n"
              f"K301,Белова,Ольга,Игоревна,1991,{soon.replace(year=1991).isoformat()},Москва,"
              "СИЗО-2 «Бутырка»,77-sizo-2,http\n"
              "K302,Громов,Артём,,1984,,Пермский край,ИК-9 Пермь,59-ik-9,http\n"
              "K101,Иванов,Иван,Иванович,1985,,Санкт-Петербург и Ленинградская область,"
              "СИЗО-1 «Кресты»,78-sizo-1,http\n")
    mod1.go("/prisoners/import")
    page.set_input_files("#file", files=[{"name": "prisoners.csv", "mimeType": "text/csv",
                                          "buffer": upload.encode()}])
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("section.panel")).to_contain_text("to add: 2")
    expect(page.locator("table")).to_contain_text("Белова")
    mod1.shot("prisoners-import-preview")
    assert not stack.query("SELECT id FROM prisoners WHERE code = 'K301'")  # only a preview
    page.get_by_role("button", name="Apply 2 changes").click()
    expect(page.locator(".flash.ok")).to_contain_text("2 added")
    assert {r["code"] for r in stack.query("SELECT code FROM prisoners")} >= {"K301", "K302"}
    mod1.go("/prisoners")
    expect(page.locator("#birthdays")).to_contain_text("Белова Ольга")
    mod1.shot("prisoners")

    # -- the letter page tells the whole story -----------------------------------------------
    mod1.go(f"/letters/{held_a['id']}")
    expect(page.locator("h1")).to_contain_text("Delivered")  # its reply came back
    expect(page.locator(".timeline")).to_contain_text("mod1")
    expect(page.locator(".timeline")).to_contain_text("the prisoner's reply came back")
    expect(page.locator("body")).to_contain_text(number)
    assert ANNA not in page.content()  # the writer's address stays masked
    mod1.shot("letter")
    mod1.go(f"/letters/{held_b['id']}")
    expect(page.locator("body")).to_contain_text(XSS)
    assert page.locator("main script").count() == 0

    for name in ("failures", "letters", "facilities"):
        mod1.go(f"/{name}")
        expect(page.locator("h1")).to_be_visible()
        mod1.shot(name)

    admin = organizer("admin")
    admin.go("/audit")
    for action in ("approve", "return", "desk_submitted", "match_reply", "import_prisoners"):
        expect(admin.page.locator("table")).to_contain_text(action)
    admin.shot("audit")
    admin.go("/users")
    expect(admin.page.locator("table")).to_contain_text("mod2")
    admin.shot("users")

    # The overview now: nothing to moderate, nothing at the desk, the processes answer,
    # and the birthday just imported is there.
    mod1.go("/")
    expect(page.locator("a.tile", has_text="To moderate").locator(".n")).to_have_text("0")
    expect(page.locator("section[aria-labelledby=alerts-h]")).to_contain_text("All clear")
    expect(page.locator("section[aria-labelledby=bd-h]")).to_contain_text("Белова Ольга")
    mod1.shot("overview-after")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    mod1.shot("overview-phone")

    for person in (mod1, mod2, admin):
        assert person.errors == [], person.errors
        assert person.dialogs == []  # no script ran from a letter


def test_the_overview_says_when_the_inbox_watcher_stops_and_when_it_is_back(stack, organizer):
    viewer = organizer("viewer")
    alerts = viewer.page.locator("section[aria-labelledby=alerts-h]")
    expect(alerts).not_to_contain_text("Inbox watcher")
    stack.kill("watch", signal.SIGTERM)
    # Its last heartbeat four minutes ago: as if it had died then (waiting 3 minutes for real
    # would triple the suite).
    old = (datetime.now(UTC) - timedelta(minutes=4)).isoformat()
    with stack.engine.begin() as conn:
        conn.execute(text("UPDATE cursors SET value = :v WHERE name = 'heartbeat:imap-watch'"),
                     {"v": old})
    # No reload: the live part refreshes itself.
    expect(alerts).to_contain_text("Inbox watcher silent since", timeout=12_000)
    expect(alerts).to_contain_text("new letters are not being picked up")
    viewer.shot("overview-watcher-silent")
    stack.start_process("watch")
    expect(alerts).not_to_contain_text("Inbox watcher", timeout=30_000)
    assert viewer.errors == []
