""""To anyone" through the real checks: the least-written prisoner is chosen letter by letter,
not once per batch, and the chooser takes any candidate set (a campaign's prisoners). The
same over two worker processes on SQLite and PostgreSQL: tests/e2e/test_anyone_fairness.py."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import Letter, Prisoner
from gateway.pipeline.check_batch import CheckBatch
from tests.intake.conftest import GATEWAY, LETTERS, SECRET, mail

pytestmark = pytest.mark.intake

MORE = [dict(code=f"K2{i:02d}", last_name=last, first_name=first, middle_name=None,
             birth_year=1980 + i, facility_name="ИК-1 Тверь", facility_id="69-ik-1")
        for i, (last, first) in enumerate([("Сидоренко", "Олег"), ("Ли", "Анна"),
                                           ("Ковальчук", "Ирина")])]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_settings(request, tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path}/gateway.db" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    return Settings(database_url=url, secret_key=SECRET, gateway_address=GATEWAY,
                    org_reply_email="replies@gw.example", broker_url="redis://127.0.0.1:1/0")


@pytest.fixture
def gw(gw):
    gw.settings.confirm_senders = False
    gw.settings.sender_daily_limit = 1000
    with gw.sessions() as session:
        session.add_all([Prisoner(**p) for p in MORE])
        session.commit()
    return gw


def anyone_letters(n: int) -> list[bytes]:
    return [mail("Любому", LETTERS[i % len(LETTERS)] + f"\n\nP.S. {i}",
                 sender=f"Writer {i} <w{i}@example.org>") for i in range(n)]


def test_one_batch_of_anyone_letters_is_spread_over_every_prisoner(gw):
    ids = gw.receive(*anyone_letters(20))
    gw.check(ids)  # one call: one batch, as one worker gets it
    with gw.sessions() as session:
        counts = Counter(session.scalars(select(Letter.prisoner_id).where(Letter.id.in_(ids))))
    assert None not in counts and len(counts) == 5
    assert set(counts.values()) == {4}, counts


def test_named_letters_count_and_anyone_goes_to_the_least_written(gw):
    named = gw.receive(*[mail("Петровой Марии", LETTERS[i], sender=f"N {i} <n{i}@example.org>")
                         for i in range(3)])
    ids = gw.receive(*anyone_letters(7))
    gw.check(named + ids)
    with gw.sessions() as session:
        petrova = session.scalar(select(Prisoner.id).where(Prisoner.code == "K102"))
        counts = Counter(session.scalars(select(Letter.prisoner_id)))
    # Петрова has 3 named letters; the 7 "anyone" letters fill up the other four first.
    assert counts.pop(petrova) == 3 and sorted(counts.values()) == [1, 2, 2, 2], counts


def test_the_chooser_takes_a_candidate_set(gw):
    ids = gw.receive(*anyone_letters(2))
    gw.check(ids)
    with gw.sessions() as session:
        batch = CheckBatch(session, gw.settings)
        campaign = [c for c in batch.candidates() if c.code in ("K200", "K201")]
        written = Counter(session.scalars(select(Letter.prisoner_id)))
        assert [written[c.id] for c in campaign] == [0, 0]  # the two letters went to K101, K102
        first = batch.claim_anyone(campaign)
        assert first.code == "K200"  # a tie: the lower id
        batch.assigned(first.id)
        assert batch.claim_anyone(campaign).code == "K201"  # now the least written


def test_anyone_never_goes_to_a_prisoner_not_known_to_be_in_custody(gw):
    with gw.sessions() as session:
        for code, status in (("K200", "released"), ("K201", "moved"), ("K202", "unknown")):
            session.scalar(select(Prisoner).where(Prisoner.code == code)).status = status
        session.commit()
    ids = gw.receive(*anyone_letters(6))
    gw.check(ids)
    with gw.sessions() as session:
        chosen = set(session.scalars(select(Prisoner.code).join(
            Letter, Letter.prisoner_id == Prisoner.id).where(Letter.id.in_(ids))))
    assert chosen and not chosen & {"K200", "K201", "K202"}, chosen
