"""A writer who asks how to write with a campaign's tag gets the guide with that campaign's
own guidance and its greeting template first (Russian first, English below; escaped in
the HTML part); without the tag, or after the campaign has ended, the ordinary guide."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from gateway.models import Campaign
from tests.campaigns.test_joining import gateway_settings  # noqa: F401
from tests.intake.conftest import GATEWAY, mail

pytestmark = pytest.mark.campaigns

PLUS = "letters+8марта@gw.example"
GREETING = "Дорогая <имя>! Поздравляю с 8 Марта, пусть весна придёт и к вам."


def _ask(address: str) -> bytes:
    return mail("Помощь", "Как написать письмо?", sender="Вера <vera@example.org>").replace(
        f"To: {GATEWAY}".encode(), f"To: {address}".encode())


def _campaign(march, **values) -> None:
    with march.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.tag == "8марта"))
        for key, value in values.items():
            setattr(campaign, key, value)
        session.commit()


def _guide(march) -> tuple[str, str]:
    [row] = march.outbox("guidance")[-1:]
    msg = march.message(row)
    return (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content())


def test_the_campaign_guide_carries_its_guidance_and_greeting_template(march):
    _campaign(march, guidance="Пишите о весне и о цветах.", greeting_template=GREETING)
    march.send(_ask(PLUS))
    text, html = _guide(march)
    assert "Кампания «8 марта»" in text and "Пишите о весне и о цветах." in text
    assert GREETING in text and "letters+8марта@gw.example" in text
    assert text.index(GREETING) < text.index("Hello") < text.index("sample greeting")
    assert "&lt;имя&gt;" in html and "<имя>" not in html  # the organizer's text, escaped


def test_no_campaign_section_without_the_tag_or_after_the_end(march):
    _campaign(march, guidance="Пишите о весне.", greeting_template=GREETING)
    march.send(_ask(GATEWAY))  # no tag: the ordinary guide
    text, _ = _guide(march)
    assert "Кампания" not in text and GREETING not in text and "Hello" in text
    _campaign(march, ends_on=date.today() - timedelta(days=1))
    march.send(_ask(PLUS).replace(b"vera@", b"olga@"))
    text, _ = _guide(march)
    assert "Кампания" not in text and GREETING not in text and "Hello" in text
