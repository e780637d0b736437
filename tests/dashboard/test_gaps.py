"""Alerts for silent processes and growing queues, upcoming birthdays (birth_date in the
directory and its migration), and the four-eyes rule for reply matches."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import inspect, select

from gateway.db import engine_for
from gateway.directory import import_rows, upcoming_birthdays
from gateway.heartbeat import beat
from gateway.models import AuditEntry, Cursor, Prisoner, Reply, ReplyPage, utcnow
from gateway.web.app import create_app
from gateway.web.overview import compute

from .conftest import PASSWORD, login
from .test_actions import post

pytestmark = pytest.mark.dashboard


def alerts(sessions, **kw) -> list[str]:
    with sessions() as session:
        return [a.text for a in compute(session, **kw).alerts()]


def test_silent_watcher_and_worker_raise_alerts_until_they_beat(sessions, seed):
    texts = alerts(sessions, queues={})
    assert any(t.startswith("Inbox watcher has never reported") for t in texts)
    assert any(t.startswith("Worker has never reported") for t in texts)
    with sessions() as session:
        beat(session, "imap-watch")
        beat(session, "worker")
        session.commit()
    texts = alerts(sessions, queues={})
    assert not [t for t in texts if "watcher" in t or "Worker" in t]
    with sessions() as session:  # the watcher fell silent four minutes ago
        session.get(Cursor, "heartbeat:imap-watch").value = \
            (utcnow() - timedelta(minutes=4)).isoformat()
        session.commit()
    texts = alerts(sessions, queues={})
    assert [t for t in texts if t.startswith("Inbox watcher silent since")]
    assert not [t for t in texts if "Worker" in t]


def test_queue_depth_alerts_read_redis_and_tolerate_it_down(settings, sessions, redis_url, as_user):
    import redis
    client = redis.Redis.from_url(redis_url)
    client.rpush("letters", *range(12))
    client.rpush("mail", "m")
    app = create_app(settings.model_copy(update={"broker_url": redis_url,
                                                 "queue_alert_depth": 10}))
    app.config.update(TESTING=True, OVERVIEW_SETTLED_SECONDS=0, DASHBOARD_DEFAULT_LOCALE="en")
    web = app.test_client()
    assert login(web, "viewer").status_code == 302
    page = web.get("/overview/live").get_data(as_text=True)
    assert "Queue letters is growing: 12 tasks wait" in page
    assert "Queue mail is growing" not in page
    assert "Redis" not in page
    # The default settings point at a port where nothing listens: one alert, no crash.
    down = as_user("viewer").get("/overview/live")
    assert down.status_code == 200
    assert "The task queue (Redis) does not answer" in down.get_data(as_text=True)


def test_metrics_show_heartbeat_ages(as_user, sessions):
    with sessions() as session:
        beat(session, "worker")
        session.commit()
    text = as_user("viewer").get("/metrics").get_data(as_text=True)
    assert 'gateway_heartbeat_age_seconds{process="worker"}' in text
    assert 'process="imap-watch"' not in text  # never reported: absent, not zero


def test_birth_dates_import_and_upcoming_birthdays(sessions, seed, as_user):
    today = date.today()
    in_3 = today + timedelta(days=3)
    in_20 = today + timedelta(days=20)
    rows = [
        {"code": "B1", "last_name": "Белова", "first_name": "Ольга", "birth_year": "",
         "birth_date": in_3.replace(year=1990).isoformat(), "facility_name": "ИК-1",
         "facility_id": "F1"},
        {"code": "B2", "last_name": "Громов", "first_name": "Артём",
         "birth_date": in_20.replace(year=1985).strftime("%d.%m.%Y"), "facility_name": "ИК-1",
         "facility_id": "F1"},
        {"code": "B3", "last_name": "Дурова", "first_name": "Нина", "birth_year": "1970",
         "birth_date": "1971-01-01", "facility_name": "ИК-1", "facility_id": "F1"},
        {"code": "B4", "last_name": "Ершов", "first_name": "Иван", "birth_date": "31.02.1980",
         "facility_name": "ИК-1", "facility_id": "F1"},
        {"code": "B5", "last_name": "Жуков", "first_name": "Лев", "birth_date": "today",
         "facility_name": "ИК-1", "facility_id": "F1"},
    ]
    with sessions() as session:
        report = import_rows(session, rows)
        session.commit()
        assert report.added == 2
        assert [e.split(":")[0] for e in report.errors] == ["line 4", "line 5", "line 6"]
        b1 = session.scalar(select(Prisoner).where(Prisoner.code == "B1"))
        assert (b1.birth_date, b1.birth_year) == (in_3.replace(year=1990), 1990)
        soon = upcoming_birthdays(session, today)
        assert [(b.code, b.in_days, b.turns) for b in soon] == [("B1", 3, in_3.year - 1990)]
        assert [b.code for b in upcoming_birthdays(session, today, days=30)] == ["B1", "B2"]
        # A file without the column leaves known dates alone.
        import_rows(session, [{"code": "B1", "last_name": "Белова", "first_name": "Ольга",
                               "birth_year": "1990", "facility_name": "ИК-1",
                               "facility_id": "F1"}])
        session.commit()
        assert session.scalar(select(Prisoner.birth_date).where(Prisoner.code == "B1"))
    page = as_user("viewer").get("/prisoners").get_data(as_text=True)
    assert 'id="birthdays"' in page and "Белова Ольга" in page
    assert "Громов" in page.split('id="birthdays"')[1].split("</section>")[1]  # table only


def test_leap_day_birthdays_fall_on_the_first_of_march(sessions, seed):
    with sessions() as session:
        session.add(Prisoner(code="L1", last_name="Високосов", first_name="Пётр",
                             birth_date=date(1996, 2, 29), facility_name="ИК", facility_id="F"))
        session.commit()
        (b,) = upcoming_birthdays(session, date(2027, 2, 25), days=7)
        assert (b.on, b.turns) == (date(2027, 3, 1), 31)
        assert upcoming_birthdays(session, date(2028, 2, 25), days=7)[0].on == date(2028, 2, 29)
        # Across the new year.
        session.add(Prisoner(code="L2", last_name="Январёв", first_name="Ян",
                             birth_date=date(1980, 1, 2), facility_name="ИК", facility_id="F"))
        session.commit()
        (b,) = upcoming_birthdays(session, date(2026, 12, 28), days=7)
        assert (b.code, b.on, b.turns) == ("L2", date(2027, 1, 2), 47)


def unmatched(sessions, number: str) -> int:
    with sessions() as session:
        reply = Reply(source="email", external_id=f"<{number}@scan>", letter_number=number,
                      state="UNMATCHED")
        session.add(reply)
        session.flush()
        session.add(ReplyPage(reply_id=reply.id, n=1, content_type="image/jpeg",
                              data=b"\xff\xd8\xff\xe0jpeg"))
        session.commit()
        return reply.id


@pytest.fixture
def four_eyes(settings, sessions, app):
    """The app with GATEWAY_REPLY_MATCH_CONFIRMATIONS=2 (users made by the `app` fixture)."""
    strict = create_app(settings.model_copy(update={"reply_match_confirmations": 2}))
    strict.config.update(TESTING=True, OVERVIEW_SETTLED_SECONDS=0, DASHBOARD_DEFAULT_LOCALE="en")

    def client(username: str):
        c = strict.test_client()
        assert login(c, username, PASSWORD).status_code == 302
        return c
    return client


def reply_state(sessions, reply_id: int) -> tuple[str, int | None]:
    with sessions() as session:
        reply = session.get(Reply, reply_id)
        return reply.state, reply.letter_id


def test_a_guessed_match_needs_a_second_different_organizer(four_eyes, seed, sessions):
    letter_id = seed.submitted("FP-2026-000555")
    reply_id = unmatched(sessions, "XX-0000-1")
    moderator, admin = four_eyes("moderator"), four_eyes("admin")

    post(moderator, f"/replies/{reply_id}/match", number="FP-2026-000555")
    assert "A second organizer must confirm" in moderator.get("/replies").get_data(as_text=True)
    assert reply_state(sessions, reply_id) == ("UNMATCHED", None)
    page = admin.get("/replies").get_data(as_text=True)
    assert "moderator matched this reply to letter" in page
    assert 'value="FP-2026-000555"' in page and "Confirm match and forward" in page

    post(moderator, f"/replies/{reply_id}/match", number="FP-2026-000555")
    assert "a different organizer must confirm" in moderator.get("/replies").get_data(as_text=True)
    assert reply_state(sessions, reply_id) == ("UNMATCHED", None)

    post(admin, f"/replies/{reply_id}/match", number="fp-2026-000555")
    assert reply_state(sessions, reply_id) == ("FORWARDED", letter_id)
    with sessions() as session:
        detail = session.scalar(select(AuditEntry.detail).where(
            AuditEntry.action == "match_reply"))
        assert "read by moderator, confirmed by admin" in detail


def test_a_second_organizer_naming_another_letter_starts_over(four_eyes, seed, sessions):
    seed.submitted("FP-2026-000555")
    other = seed.submitted("FP-2026-000556")
    reply_id = unmatched(sessions, "XX-0000-2")
    post(four_eyes("moderator"), f"/replies/{reply_id}/match", number="FP-2026-000555")
    post(four_eyes("admin"), f"/replies/{reply_id}/match", number="FP-2026-000556")
    assert reply_state(sessions, reply_id) == ("UNMATCHED", None)  # they disagree
    post(four_eyes("moderator"), f"/replies/{reply_id}/match", number="FP-2026-000556")
    assert reply_state(sessions, reply_id) == ("FORWARDED", other)


def test_a_number_read_on_the_scan_needs_one_organizer(four_eyes, seed, sessions):
    letter_id = seed.submitted("FP-2026-000777")
    reply_id = unmatched(sessions, "FP 2026 000777")
    post(four_eyes("moderator"), f"/replies/{reply_id}/match", number="FP-2026-000777")
    assert reply_state(sessions, reply_id) == ("FORWARDED", letter_id)


def test_one_confirmation_by_default(as_user, seed, sessions):
    letter_id = seed.submitted("FP-2026-000888")
    reply_id = unmatched(sessions, "XX-0000-3")
    post(as_user("moderator"), f"/replies/{reply_id}/match", number="FP-2026-000888")
    assert reply_state(sessions, reply_id) == ("FORWARDED", letter_id)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_birth_date_migration(backend, tmp_path, request):
    from gateway.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else \
        request.getfixturevalue("pg_url")
    upgrade(url)
    engine = engine_for(url)
    try:
        columns = {c["name"]: c for c in inspect(engine).get_columns("prisoners")}
        assert columns["birth_date"]["nullable"]
    finally:
        engine.dispose()


def test_the_directory_export_round_trips_and_is_audited(as_user, seed, sessions):
    from gateway.web.prisoners import decode_csv, parse_csv
    with sessions() as session:
        session.get(Prisoner, seed.prisoner_id).birth_date = date(1980, 5, 17)
        session.commit()
    assert as_user("viewer").get("/prisoners/export.csv").status_code == 403
    r = as_user("moderator").get("/prisoners/export.csv")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == 'attachment; filename="prisoners.csv"'
    rows = parse_csv(decode_csv(r.data))
    assert [(x["code"], x["last_name"], x["birth_date"]) for x in rows] == \
        [("IVA1", "Иванов", "1980-05-17")]
    with sessions() as session:
        assert import_rows(session, rows).unchanged == 1  # the import takes it back as is
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "export_prisoners"))
        assert (entry.username, entry.detail) == ("moderator", "1 prisoners")


def test_viewing_unmatched_scans_is_audited(as_user, seed, sessions):
    reply_id = unmatched(sessions, "XX-0000-9")
    assert as_user("viewer").get("/replies").status_code == 200
    with sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "view_reply"))
        assert (entry.username, entry.detail) == ("viewer", f"reply {reply_id}: triage")
