"""A letter that names a campaign before its start or after its end is never lost: it goes
as an ordinary letter (not counted for the campaign), and the writer's received and sent
notices say the campaign has ended (or not begun). Through the real checks, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from gateway import actions, campaign_progress, campaigns
from gateway.models import Campaign, Letter, Prisoner
from gateway.notices import queue_late_received
from gateway.states import LetterState as S
from tests.campaigns.test_joining import gateway_settings, to  # noqa: F401
from tests.intake.conftest import GATEWAY, LETTERS, mail

pytestmark = pytest.mark.campaigns

PLUS = "letters+8марта@gw.example"
TODAY = date.today()


def _dates(march, starts_on=None, ends_on=None) -> None:
    with march.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.tag == "8марта"))
        campaign.starts_on, campaign.ends_on = starts_on, ends_on
        session.commit()


def _counted(march) -> int:
    with march.sessions() as session:
        return campaign_progress.counts(session, campaign_id=session.scalar(
            select(Campaign.id).where(Campaign.tag == "8марта"))).received


def test_a_letter_after_the_campaign_goes_as_an_ordinary_letter_and_says_so(march):
    march.settings.received_notice_after_s = 0
    _dates(march, TODAY - timedelta(days=10), TODAY - timedelta(days=1))
    [late] = march.send(to(march.settings.gateway_address, "[8марта] Петровой Марии", 1))
    letter = march.letter(late)
    assert letter.state == S.READY and letter.campaign_id is None  # not lost, not counted
    assert _counted(march) == 0
    with march.sessions() as session:
        assert letter.prisoner_id == session.scalar(
            select(Prisoner.id).where(Prisoner.code == "K102"))
        queue_late_received(session, march.settings)
        # The service took it (claimed for submission, then accepted): the sent notice.
        claimed = session.get(Letter, late)
        claimed.state = S.SUBMITTING
        actions.record_submitted(session, march.settings, claimed, "FP-1", how="api")
        session.commit()
    for kind in ("received", "sent"):
        [notice] = march.outbox(kind)
        text = march.message(notice).get_content()
        assert "Кампания «8 марта» уже закончилась" in text, text
        assert "The campaign “8 марта” has ended" in text
        assert text.index("уже закончилась") < text.index("has ended")

    # Within its dates the same letter joins the campaign, and nothing is said.
    _dates(march, TODAY, TODAY)
    [on_time] = march.send(to(march.settings.gateway_address, "[8марта] Петровой Марии", 2))
    assert march.letter(on_time).campaign_id is not None and _counted(march) == 1
    assert not [f for f in march.letter(on_time).findings if f["rule"] == "campaign"]


def test_before_the_start_anyone_still_goes_to_the_campaigns_prisoners(march):
    _dates(march, starts_on=TODAY + timedelta(days=3))
    ids = march.send(*[to(PLUS, "Любому", i) for i in range(3)])
    with march.sessions() as session:
        women = {p.id for p in session.scalar(select(Campaign)).prisoners}
        letters = [session.get(Letter, i) for i in ids]
    assert all(le.campaign_id is None and le.prisoner_id in women for le in letters)
    assert all(any(f["code"] == "not_started" for f in le.findings) for le in letters)


def test_a_late_birthday_greeting_still_reaches_its_person(march):
    with march.sessions() as session:
        k101 = session.scalar(select(Prisoner).where(Prisoner.code == "K101"))
        campaigns.create(session, title="День рождения", tag="bd-k101-late", kind="birthday",
                         prisoner_ids=[k101.id], starts_on=TODAY - timedelta(days=14),
                         ends_on=TODAY - timedelta(days=1))
        session.commit()
    [greeting] = march.send(mail("Re: [bd-k101-late] День рождения", LETTERS[0],
                                 sender="Вера <vera@example.org>"))
    letter = march.letter(greeting)
    assert letter.state == S.READY and letter.prisoner_id == k101.id, letter.reason
    assert letter.campaign_id is None
    assert GATEWAY  # the greeting came to the one address, with the tag in its subject
