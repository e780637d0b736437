"""Guidance for writers: what counts as a request, who is suggested, and what the guide may
and may not contain (rendered Markdown with raw HTML off; prisoners, never writers)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.config import Settings
from gateway.db import engine_for, session_factory
from gateway.guidance.content import build_guide, current_guide, default_markdown, save_markdown
from gateway.guidance.picks import Candidate, rank_picks, who_needs_letters
from gateway.guidance.requests import asks_for_guidance
from gateway.models import Base, InboundMessage, Letter, Prisoner
from gateway.providers.profiles import load_profiles

pytestmark = pytest.mark.directory

DEFAULTS = {"ru": default_markdown("ru"), "en": default_markdown("en")}


@pytest.mark.parametrize("subject,text,attachments,expected", [
    ("помощь", "", 0, True),
    ("Re: Помощь!", "", 0, True),
    ("", "Как писать?\nПодскажите, пожалуйста, с чего начать.", 0, True),
    ("HELP", "how do I write to someone?", 0, True),
    ("Инструкция", "", 0, True),
    ("", "", 0, True),                      # an empty letter
    ("Петровой Марии", "", 0, True),        # empty, though addressed: nothing to send
    ("", "", 1, False),                     # a photo alone is a letter
    ("помощь", "Здравствуйте! " * 40, 0, False),  # a long letter titled "помощь" is a letter
    ("Петровой Марии", "Нужна ли вам помощь? Пишите.", 0, False),
    ("Иванову Ивану", "Здравствуйте, Иван! Как вы?", 0, False),
])
def test_what_is_a_request_for_guidance(subject, text, attachments, expected):
    assert asks_for_guidance(subject, text, attachments) is expected


def _candidate(pid, last, letters, interests=""):
    return Candidate(pid, last, "Иван", None, f"K{pid}", "СИЗО-1", letters, interests)


def test_campaigns_then_birthdays_then_fewest_letters():
    people = [_candidate(1, "Авдеев", 5), _candidate(2, "Борисов", 0),
              _candidate(3, "Васильев", 9), _candidate(4, "Гусев", 2),
              _candidate(5, "Дёмин", 1)]
    soon = date(2026, 12, 20)
    picks = rank_picks(people, birthdays={3: soon}, campaigns={4: "8 марта"}, limit=4)
    assert [p.prisoner_id for p in picks] == [4, 3, 2, 5]
    assert picks[0].reasons[0] == "campaign" and picks[1].birthday == soon
    assert picks[2].subject == "Борисову Ивану"  # the dative, as the subject line reads


def test_markdown_cannot_carry_html_or_links_from_the_directory():
    hostile = [rank_picks([_candidate(1, "Иванов", 0,
                                      '<img src=x onerror=alert(1)> [клик](javascript:alert(1))')],
                          {}, {}, 1)[0]]
    texts = {"ru": "## Привет\n<script>alert(1)</script>\n[ссылка](javascript:alert(1))",
             "en": DEFAULTS["en"]}
    guide = build_guide(texts, hostile, load_profiles()["http"], reply_ordered=True,
                        gateway_address="letters@gw.example")
    html = guide.html["ru"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and 'href="javascript' not in html
    assert "<h2>Привет</h2>" in html
    assert "55 ₽" in guide.text["ru"]  # the price comes from the provider profile


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path}/g.db"
    Base.metadata.create_all(engine_for(url))
    yield session_factory(url)
    engine_for(url).dispose()


def add_letter(s, n: int, **fields) -> None:
    inbound = InboundMessage(mailbox="INBOX", uidvalidity=1, uid=n, content_hash=f"{n:064d}",
                             size=1, raw=b"x")
    s.add(inbound)
    s.flush()
    s.add(Letter(public_id=f"p{n}", inbound_id=inbound.id, **fields))


def test_the_guide_lists_prisoners_and_never_a_writer(sessions):
    now = datetime.now(UTC)
    with sessions() as s:
        for i, last in enumerate(["Иванов", "Петров", "Сидоров", "Орлов"], 1):
            s.add(Prisoner(id=i, code=f"K{i}", last_name=last, first_name="Иван",
                           facility_name="СИЗО-1", facility_id="x", provider="http"))
        s.add(Prisoner(id=9, code="K9", last_name="Свободный", first_name="Пётр",
                       facility_name="—", facility_id="x", status="released", can_receive=False))
        # Letters from writers whose names and subjects must never appear in a guide.
        for n in range(3):
            add_letter(s, n, prisoner_id=1, state="SUBMITTED", subject="Секретная тема",
                       writer_name="Анастасия", sender_hash=f"h{n}", created_at=now)
        add_letter(s, 7, prisoner_id=2, state="DELIVERED", writer_name="Борис",
                   sender_hash="hb", created_at=now)
        s.commit()
        picks = who_needs_letters(s, now.date(), limit=3)
        # Fewest letters first; the released prisoner never appears.
        assert [p.code for p in picks] == ["K4", "K3", "K2"]
        save_markdown(s, "ru", "## Наш текст\nПишите о книгах.", by="org")
        s.commit()
        settings = Settings(gateway_address="letters@gw.example", secret_key="x" * 32)
        guide = current_guide(s, settings, picks)
    assert "Наш текст" in guide.text["ru"] and "How to write to someone" in guide.text["en"]
    everything = " ".join([*guide.text.values(), *guide.html.values()])
    assert "Орлову Ивану" in everything and "Иванову Ивану" not in everything
    for secret in ("Анастасия", "Борис", "Секретная тема", "Свободный", "h0", "hb"):
        assert secret not in everything


def test_interests_and_wishes_are_shown_once_the_directory_has_them():
    from gateway.guidance.picks import _interests, _wants_letters
    p = Prisoner(last_name="Иванов", first_name="Иван")
    assert _interests(p) == "" and _wants_letters(p)  # today's directory: nothing to show
    p.interests = ["шахматы", "история\nРоссии"]
    p.wants_letters = False
    assert _interests(p) == "шахматы, история России" and not _wants_letters(p)
