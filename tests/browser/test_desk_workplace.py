"""The desk and the post as volunteers work them, on a phone (390x844, Debian's Chromium),
on letters the real pipeline made: e-mailed to the inbox, read and checked by the worker,
routed at the check straight to the desk or the post (no submission, no gate). The writer
hears the same story on every route: sent, delivered or censored (with the reason) or
returned, and the reply, once. Screenshots land in tests/dashboard/artifacts/desk-*.png."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.e2e.stack import letter

pytestmark = [pytest.mark.desk, pytest.mark.browser, pytest.mark.timeout(300)]

PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).parent.parent / "dashboard" / "artifacts"
CSV = ("code,last_name,first_name,middle_name,birth_year,region,facility_name,facility_id,"
       "provider\n"
       "D401,Орлов,Дмитрий,Сергеевич,1987,Москва,ИК-6 Москва,77-ik-6,fsin-pismo\n"
       "D402,Соколова,Анна,Петровна,1990,Тверская область,ИК-1 Тверь,69-ik-1,zonatelecom\n"
       "D403,Белов,Пётр,Ильич,1979,Санкт-Петербург и Ленинградская область,"
       "СИЗО-1 «Кресты»,78-sizo-1,post\n")
WRITERS = {"orlov": "olga@example.org", "sokolova": "sergei@example.org",
           "belov": "boris@example.org"}
DAYS = ["Сегодня я ходила в лес за грибами и нашла целую корзину лисичек.",
        "Вчера мы с друзьями смотрели старый фильм про моряков и долго спорили о нём.",
        "На этой неделе я начал учиться играть на гитаре, пока выходит только одна песня.",
        "У нас во дворе поселилась рыжая кошка, дети кормят её каждое утро."]


def warm(name: str, extra: str = "") -> str:
    return (f"Здравствуйте, {name}!\n\nПишу вам из Петербурга. У нас выпал первый снег, и город "
            "стал тихим и светлым. Вечерами я читаю книги и вспоминаю лето. Мы все помним о "
            f"вас и ждём. Берегите себя и пишите, что вы сейчас читаете.\n\n{extra}\n\nОбнимаю")


def row(stack, letter_id: int) -> dict:
    return stack.query("SELECT * FROM letters WHERE id = :i", i=letter_id)[0]


def by_subject(stack, subject: str) -> list[dict]:
    return stack.query("SELECT * FROM letters WHERE subject = :s ORDER BY id", s=subject)


def bodies(stack, address: str) -> list[str]:
    return [m.message.get_body(("plain",)).get_content() for m in stack.mail_to(address)]


def replies_to(stack, address: str) -> list:
    return [m for m in stack.mail_to(address)
            if any(True for _ in m.message.iter_attachments())]


class Volunteer:
    def __init__(self, chromium, stack, username: str) -> None:
        self.stack, self.base = stack, stack.web_url
        self.context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(self.base + "/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        expect(self.page.locator("h1")).to_have_text("Desk")  # a volunteer lands here

    def go(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"desk-{name}.png"), full_page=True)

    def take(self, facility: str) -> int:
        self.go("/desk")
        self.page.locator("form.desk-queue", has_text=facility).get_by_role(
            "button", name="Take a letter").click()
        expect(self.page.locator("article.desk-task")).to_be_visible()
        return int(re.search(r"/desk/(\d+)$", self.page.url).group(1))

    def record(self, number: str, price: str) -> None:
        task = self.page.locator("article.desk-task")
        task.locator("input[name=number]").fill(number)
        task.locator("input[name=price]").fill(price)
        task.get_by_role("button", name="Record as submitted").click()
        expect(self.page.locator(".flash.ok")).to_contain_text(number)

    def news(self, letter_id: int, outcome: str, reason: str | None = None) -> None:
        self.go("/desk")
        form = self.page.locator(f"#news-{letter_id}")
        form.locator("select[name=outcome]").select_option(outcome)
        if reason is not None:
            form.locator("select[name=reason]").select_option(reason)
        form.get_by_role("button", name="Record").click()
        expect(self.page.locator(".flash.ok")).to_contain_text(f"Letter #{letter_id}")

    def upload(self, files: list[tuple[str, str, bytes]], number: str) -> str:
        self.go("/desk")
        form = self.page.locator("#scan-upload")
        form.locator("input[name=pages]").set_input_files(
            [{"name": n, "mimeType": t, "buffer": b} for n, t, b in files])
        form.locator("input[name=number]").fill(number)
        form.get_by_role("button", name="Upload").click()
        flash = self.page.locator(".flash")
        expect(flash).to_be_visible()
        return flash.inner_text()

    def close(self) -> None:
        assert self.errors == [], self.errors  # no CSP violation, no script error
        self.context.close()


def jpeg_photo() -> bytes:
    """A phone photo of a handwritten page: EXIF says it was taken sideways."""
    image = Image.new("RGB", (800, 600), (250, 248, 240))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def pdf_scan(pages: int = 2) -> bytes:
    images = [Image.new("RGB", (595, 842), (255, 255, 255)) for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


@pytest.fixture(scope="module")
def volunteers(stack):
    for name in ("vol1", "vol2"):
        stack.gateway("user", "add", name, "--role", "volunteer", "--password", PASSWORD)
    return ("vol1", "vol2")


def test_a_desk_letter_from_the_inbox_to_a_forwarded_reply(stack, chromium, volunteers,
                                                           tmp_path):
    path = tmp_path / "desk.csv"
    path.write_text(CSV, encoding="utf-8")
    stack.gateway("prisoners", "import", str(path))
    stack.send(letter("D401", warm("Дмитрий", "Передаю привет от друзей."),
                      sender=f"Ольга <{WRITERS['orlov']}>"))
    stack.send(letter("D402", warm("Анна", "Как ваши дела?"),
                      sender=f"Сергей <{WRITERS['sokolova']}>"))
    stack.send(letter("D403", warm("Пётр", "Посылаю тёплый привет."),
                      sender=f"Борис <{WRITERS['belov']}>"))
    stack.wait("three letters routed at the check to the desk and the post", lambda: sorted(
        r["state"] for r in stack.query("SELECT state FROM letters WHERE subject LIKE 'D40%'"))
        == ["DESK", "DESK", "DESK"], timeout=90)
    orlov, sokolova, belov = (by_subject(stack, c)[0] for c in ("D401", "D402", "D403"))
    assert (orlov["provider"], orlov["service"]) == ("desk", "fsin-pismo")
    assert (sokolova["provider"], sokolova["service"]) == ("desk", "zonatelecom")
    assert (belov["provider"], belov["service"]) == ("post", "post")
    # No detour: routed once, at the check; never READY, never submitted, never gated.
    detour = stack.query("SELECT count(*) AS n FROM letter_events WHERE letter_id IN "
                         "(:a, :b, :c) AND to_state IN ('READY', 'SUBMITTING')",
                         a=orlov["id"], b=sokolova["id"], c=belov["id"])
    assert detour[0]["n"] == 0
    assert not [m for m in stack.sim_letters() if "Дмитрий" in m["text"]]

    vol = Volunteer(chromium, stack, "vol1")
    page = vol.page
    vol.shot("queues")
    taken = vol.take("ИК-6 Москва")
    assert taken == orlov["id"]
    task = page.locator("article.desk-task")
    # Exactly FSIN-Pismo's form, in its order, each with a copy button.
    labels = task.locator(".copy-field .label").all_inner_texts()
    assert [label.split(" · ")[0] for label in labels[:10]] == [
        "Регион", "Учреждение", "Фамилия", "Имя", "Отчество", "Год рождения", "Отправитель",
        "Телефон отправителя", "E-mail отправителя", "E-mail ещё раз"]
    assert task.get_by_role("button", name="Copy").count() >= 11
    expect(task).to_contain_text("Орлов")
    expect(task).not_to_contain_text(WRITERS["orlov"])  # the writer's address never shows
    box = task.get_by_role("button", name="Record as submitted").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # fits the phone
    vol.shot("task")
    vol.record("FP-2026-100001", "165,00")
    done = row(stack, orlov["id"])
    assert (done["state"], done["provider_number"], Decimal(str(done["price"]))) == \
        ("SUBMITTED", "FP-2026-100001", Decimal("165.00"))
    stack.wait("Olga's 'sent' notice", lambda: [
        b for b in bodies(stack, WRITERS["orlov"]) if "FP-2026-100001" in b])

    # Zonatelecom's letter: its own form (no second e-mail field) and profile (3 pages).
    vol.take("ИК-1 Тверь")
    labels = page.locator("article.desk-task .copy-field .label").all_inner_texts()
    assert not any("E-mail ещё раз" in label for label in labels)
    vol.shot("task-zonatelecom")
    vol.record("ZT-555-0042", "90")

    # Days later: delivered, then the reply's scan, photographed and then the account's PDF.
    vol.news(orlov["id"], "delivered")
    stack.wait("Olga's 'delivered' notice", lambda: [
        b for b in bodies(stack, WRITERS["orlov"]) if "вручено" in b])
    # As the prisoner wrote it by hand: Cyrillic look-alikes and spaces.
    said = vol.upload([("reply.jpg", "image/jpeg", jpeg_photo())], "ФП 2026 100001")
    assert "forwarded" in said
    said = vol.upload([("scan.pdf", "application/pdf", pdf_scan(2))], "FP-2026-100001")
    assert "already forwarded" in said
    vol.shot("after-upload")
    forwards = stack.wait("the reply forwarded to Olga", lambda: replies_to(stack, WRITERS["orlov"]))
    [forward] = forwards  # once, though two scans of it came
    [page_1] = list(forward.message.iter_attachments())
    assert page_1.get_content_type() == "image/jpeg"
    redrawn = Image.open(io.BytesIO(page_1.get_content()))
    assert redrawn.size == (600, 800) and not redrawn.getexif()  # stood up, metadata gone

    # The censor stops Zonatelecom's letter: the reason from its list reaches the writer.
    reason = "Письмо содержит запрещённые сведения"
    vol.news(sokolova["id"], "censored", reason)
    notice = stack.wait("Sergei's 'censored' notice with the reason", lambda: [
        b for b in bodies(stack, WRITERS["sokolova"]) if reason in b])
    assert "не прошло" in notice[0] or "не пропустил" in notice[0]

    # -- the post: a batch printed, posted with its postage, then returned by the post ----
    vol.go("/desk")
    page.locator("form", has_text="СИЗО-1 «Кресты»").get_by_role(
        "button", name="Build batch").click()
    expect(page.locator(".flash.ok")).to_contain_text("ready to print")
    batch = stack.query("SELECT id FROM post_batches ORDER BY id DESC")[0]["id"]
    with page.expect_download() as download:
        page.locator(f"#batch-{batch}").get_by_role("link", name="PDF").click()
    assert download.value.path().read_bytes()[:5] == b"%PDF-"
    page.locator(f"#postage-{batch}").fill("87,50")
    vol.shot("post-batch")
    page.locator(f"#batch-{batch}").get_by_role("button", name="Mark posted").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Batch {batch} marked as posted")
    posted = row(stack, belov["id"])
    assert (posted["state"], posted["provider_number"]) == ("SUBMITTED", f"POST-{batch}-1")
    assert Decimal(str(stack.query("SELECT postage FROM post_batches WHERE id = :i",
                                   i=batch)[0]["postage"])) == Decimal("87.50")
    stack.wait("Boris's 'sent' notice", lambda: [
        b for b in bodies(stack, WRITERS["belov"]) if f"POST-{batch}-1" in b])
    vol.news(belov["id"], "not_accepted", "Вернулось: адресат выбыл")
    stack.wait("Boris hears the envelope came back, and why", lambda: [
        b for b in bodies(stack, WRITERS["belov"]) if "почта вернула конверт" in b
        and "адресат выбыл" in b])
    vol.shot("post")
    vol.close()

    # The organizers: the facility page counts the censored letter; volunteers are counted.
    org = chromium.new_context(viewport=PHONE)
    op = org.new_page()
    op.goto(stack.web_url + "/login")
    op.fill("#username", "admin")
    op.fill("#password", PASSWORD)
    op.click("button[type=submit]")
    op.goto(stack.web_url + "/facilities")
    cells = op.locator("tr", has_text="ИК-1 Тверь").first.locator("td")
    expect(cells.nth(5)).to_have_text("1")  # the Censored column
    expect(op.locator("tr", has_text=reason)).to_contain_text("ИК-1 Тверь")
    op.goto(stack.web_url + "/desk/volunteers")
    counts = op.locator("tr", has_text="vol1").first.locator("td")
    # taken 2, submitted 3 (two typed in, one batch posted), delivered, censored, returned
    assert counts.all_inner_texts() == ["vol1", "2", "3", "1", "1", "1"]
    expect(op.locator("tr", has_text="paid 165.00 where")).to_contain_text("vol1")
    op.screenshot(path=str(ARTIFACTS / "desk-volunteers.png"), full_page=True)
    # The writer heard each step once.
    for address in (WRITERS["orlov"], WRITERS["sokolova"], WRITERS["belov"]):
        subjects = [str(m.message["Subject"]) for m in stack.mail_to(address)]
        assert len(subjects) == len(set(subjects)), subjects
    org.close()


def test_two_volunteers_take_from_one_queue_at_once(stack, chromium, volunteers):
    for n, day in enumerate(DAYS):
        stack.send(letter("D401", warm("Дмитрий", day), sender=f"Друг <friend{n}@example.org>"))
    stack.wait("four more letters at the desk", lambda: len(stack.query(
        "SELECT id FROM letters WHERE state = 'DESK' AND provider = 'desk' AND "
        "subject = 'D401'")) == 4, timeout=90)
    one, two = Volunteer(chromium, stack, "vol1"), Volunteer(chromium, stack, "vol2")
    typed: dict[str, list[int]] = {"vol1": [], "vol2": []}
    for rnd in range(2):
        for v in (one, two):
            v.go("/desk")
        buttons = [v.page.locator("form.desk-queue", has_text="ИК-6 Москва").get_by_role(
            "button", name="Take a letter") for v in (one, two)]
        for b in buttons:  # both press at once: neither waits for the other's page
            b.click(no_wait_after=True)
        for name, v in (("vol1", one), ("vol2", two)):
            expect(v.page.locator("article.desk-task")).to_be_visible()
            letter_id = int(re.search(r"/desk/(\d+)$", v.page.url).group(1))
            typed[name].append(letter_id)
            v.record(f"ФП-2026-2{rnd}{len(typed[name])}{name[-1]}", "55")
    ids = typed["vol1"] + typed["vol2"]
    assert len(set(ids)) == 4, typed  # no letter typed twice
    numbers = stack.query("SELECT id, provider_number FROM letters WHERE id IN (:a,:b,:c,:d)",
                          a=ids[0], b=ids[1], c=ids[2], d=ids[3])
    assert all(r["provider_number"] for r in numbers)
    takes = stack.query("SELECT letter_id, count(*) AS n FROM letter_events WHERE "
                        "reason_code = 'desk_taken' AND letter_id IN (:a,:b,:c,:d) "
                        "GROUP BY letter_id", a=ids[0], b=ids[1], c=ids[2], d=ids[3])
    assert sorted(r["n"] for r in takes) == [1, 1, 1, 1]
    one.close()
    two.close()
