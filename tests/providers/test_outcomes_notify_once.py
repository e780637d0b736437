"""Every writer-facing outcome, whichever route reached it, queues its notice through
gateway.actions exactly once: asked twice (a double click, a redelivered task, the desk
and the API both), the writer still gets one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from gateway import actions
from gateway.human import desk
from gateway.models import CensorDecision, Letter, LetterEvent, OutboundMail
from gateway.states import IllegalTransition
from gateway.states import LetterState as S
from gateway.states import NoticeKind as N
from gateway.states import Reason as R
from tests.providers.conftest import make_letter

pytestmark = [pytest.mark.desk, pytest.mark.providers]


def _sent(session, settings, letter):
    return actions.record_submitted(session, settings, letter, "FP-2026-000901",
                                    price=Decimal("55"), how="test", polled=False)


# (state the letter starts in, the outcome, the notice kind it must send once)
OUTCOMES = [
    (S.DESK, _sent, N.SENT),
    (S.SUBMITTED, lambda s, st, le: actions.record_delivered(s, st, le), N.DELIVERED),
    (S.SUBMITTED, lambda s, st, le: actions.record_censored(s, st, le, "о деле"), N.CENSORED),
    (S.SUBMITTED, lambda s, st, le: actions.record_undelivered(
        s, st, le, "адресат выбыл", code=R.RETURNED_BY_POST), N.UNDELIVERED),
    (S.HELD, lambda s, st, le: actions.return_to_writer(
        s, st, le, note="returned", code=R.RETURNED_BY_PERSON,
        findings=[actions.Because.said("о деле нельзя")]), N.RETURNED),
]


@pytest.mark.parametrize("start,outcome,kind", OUTCOMES, ids=[k for *_, k in OUTCOMES])
def test_each_outcome_notifies_once(sessions, settings, start, outcome, kind):
    with sessions() as session:
        letter = make_letter(session, state=start, provider="desk")
        session.commit()
        first = outcome(session, settings, letter)
        session.commit()
        assert len(first) == 1
        try:  # asked again: the state machine refuses, or it is already recorded
            assert outcome(session, settings, letter) == []
            session.commit()
        except IllegalTransition:
            session.rollback()
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.letter_id == letter.id, OutboundMail.kind == kind)) == 1
        codes = session.scalars(select(LetterEvent.reason_code).where(
            LetterEvent.letter_id == letter.id)).all()
        assert codes[-1] is not None  # every event carries its code


def test_a_reply_is_news_of_delivery_without_a_second_notice(sessions, settings):
    with sessions() as session:
        letter = make_letter(session, state=S.SUBMITTED, provider="desk")
        session.commit()
        assert actions.record_delivered(session, settings, letter, by_reply=True) == []
        assert actions.record_delivered(session, settings, letter, by_reply=True) == []
        session.commit()
        assert session.get(Letter, letter.id).state == S.DELIVERED
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.letter_id == letter.id)) == 0


def test_the_censor_memory_fills_from_the_desk(sessions, settings):
    with sessions() as session:
        letter = make_letter(session, state=S.SUBMITTED, provider="desk")
        session.commit()
        desk.record_outcome(session, settings, letter.id, "vol", "censored",
                            "Письмо содержит сведения о деле")
        session.commit()
        decision = session.scalar(select(CensorDecision))
        assert decision.reason == "Письмо содержит сведения о деле"
        assert decision.facility_id == letter.prisoner.facility_id
        with pytest.raises(desk.DeskError):  # already decided
            desk.record_outcome(session, settings, letter.id, "vol", "delivered")


def test_an_abandoned_lease_returns_the_letter(sessions, settings):
    with sessions() as session:
        letter = make_letter(session, state=S.DESK, provider="desk")
        session.commit()
        assert desk.take(session, settings, "olga").id == letter.id
        session.commit()
        assert desk.take(session, settings, "ivan") is None  # held by Olga
        session.execute(Letter.__table__.update().values(lease_until=None))  # it ran out
        session.commit()
        assert desk.take(session, settings, "ivan").id == letter.id
        session.commit()
        with pytest.raises(desk.DeskError):  # Olga's lease is gone: she cannot record it
            desk.record(session, settings, letter.id, "olga", "FP-1", None)
        desk.record(session, settings, letter.id, "ivan", "FP-1", None)
        session.commit()
        assert session.get(Letter, letter.id).state == S.SUBMITTED


def _jpeg(shade: int = 250) -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (60, 80), (shade, shade, shade)).save(out, "JPEG")
    return out.getvalue()


def test_a_scan_found_by_search_waits_for_a_person(sessions, settings):
    """A volunteer's search is a reading, not the gateway's mapping: no forward until the
    triage confirms it; with the number on the scan it is forwarded at once, once."""
    from gateway.human import scans
    from gateway.models import Reply
    with sessions() as session:
        letter = make_letter(session, state=S.SUBMITTED, provider="desk")
        letter.provider_number = "FP-2026-000777"
        session.commit()
        reply, mail = scans.upload(session, settings, [_jpeg()], "vol", letter=letter)
        session.commit()
        assert (reply.state, reply.suggested_letter_id, mail) == ("UNMATCHED", letter.id, [])
        # The same scan again is one reply (its pages' hash), whoever brings it.
        assert scans.upload(session, settings, [_jpeg()], "vol", number="x")[0] is None
        reply, mail = scans.upload(session, settings, [_jpeg(200)], "vol",
                                   number="FP 2026 000777")
        session.commit()
        assert reply.state == "FORWARDED" and len(mail) == 1
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.kind == N.REPLY)) == 1
        with pytest.raises(scans.ScanError):
            scans.upload(session, settings, [b"<html>not a scan</html>"], "vol", number="x")
        assert session.scalar(select(func.count()).select_from(Reply)) == 2


def test_a_letter_the_form_refuses_goes_to_an_organizer_unpaid(sessions, settings):
    with sessions() as session:
        letter = make_letter(session, state=S.DESK, provider="desk")
        session.commit()
        with pytest.raises(desk.DeskError):  # not taken
            desk.refused(session, settings, letter.id, "vol", "нет такого учреждения")
        desk.take(session, settings, "vol")
        desk.refused(session, settings, letter.id, "vol", "нет такого учреждения")
        session.commit()
        letter = session.get(Letter, letter.id)
        assert letter.state == S.HELD and letter.leased_by is None
        assert letter.events[-1].reason_code == R.NOT_ACCEPTED
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            OutboundMail.letter_id == letter.id)) == 0


def test_postage_is_counted_in_the_month_spend(sessions, settings):
    from gateway.human.post import mark_posted
    from gateway.models import PostBatch, PostBatchLetter
    from gateway.web.overview import settled_figures
    with sessions() as session:
        letter = make_letter(session, state=S.DESK, provider="post")
        batch = PostBatch(facility_id="77-sizo-2", pdf=b"%PDF-", pages=1)
        session.add(batch)
        session.flush()
        session.add(PostBatchLetter(batch_id=batch.id, letter_id=letter.id, n=1))
        session.commit()
        def rub():
            return dict(settled_figures(session).spend).get("RUB", Decimal(0))

        before = rub()
        mark_posted(session, batch.id, "vol", settings, postage=Decimal("87.50"))
        session.commit()
        # Post letters carry no tariff (the post profile): the postage is the spend.
        assert session.get(Letter, letter.id).state == S.SUBMITTED
        assert rub() - before == Decimal("87.50") + (session.get(Letter, letter.id).price or 0)
