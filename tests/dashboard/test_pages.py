"""Every page renders with seeded data; letter text is always escaped; views are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from gateway.models import AuditEntry, Cursor, OutboundMail, Reply, ReplyPage, utcnow
from gateway.providers.breaker import BreakerState

from .conftest import HELD_FINDINGS, csrf_token

pytestmark = pytest.mark.dashboard

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def world(seed, sessions):
    ids = {
        "held": seed.letter("HELD", body="Пишу про митинг на площади.", findings=HELD_FINDINGS,
                            reason="held for a person: mentions a rally"),
        "ready": seed.letter("READY"),
        "unknown": seed.letter("UNKNOWN", reason="timeout after the request left"),
        "failed": seed.letter("FAILED", reason="provider refused: facility closed"),
        "quarantined": seed.letter("QUARANTINED", reason="could not read the message: bad MIME"),
        "submitted": seed.submitted("FP-2026-000123"),
        "desk": seed.letter("DESK", provider="desk"),
    }
    with sessions() as session:
        session.add(Cursor(name="provider:http:paused_until",
                           value=(utcnow() + timedelta(minutes=20)).isoformat()))
        session.add(Cursor(name="provider:desk:breaker", value=BreakerState(
            "open", 5, utcnow() + timedelta(minutes=2), 120).to_json()))
        session.add(Cursor(name=f"alert:desk:breaker:{utcnow().isoformat()}",
                           value="circuit open for 120 s after 5 failures: HTTP 503"))
        reply = Reply(source="email", external_id="<r1@x>", letter_number="FP-2026-000124",
                      state="UNMATCHED", note="no letter with this number")
        session.add(reply)
        session.flush()
        session.add(ReplyPage(reply_id=reply.id, n=1, content_type="image/png", data=PNG))
        session.commit()
        ids["reply"] = reply.id
    return ids


def test_overview_answers_what_needs_me_now(as_user, world):
    html = as_user("viewer").get("/").get_data(as_text=True)
    assert "To moderate" in html and "Unmatched replies" in html
    assert "Provider http is paused until" in html
    assert "Provider desk: circuit open until" in html
    assert "circuit open for 120 s after 5 failures: HTTP 503" in html
    assert "1 Outcome unknown:" in html and "1 Failed:" in html and "1 Quarantined:" in html
    assert "312.50" in html  # this month's spend
    assert "ИК-1 Москва" in html  # per facility
    assert f'href="/letters/{world["held"]}"' in html  # latest letters
    assert 'hx-trigger="every 5s"' in html


def test_overview_fragment_is_only_the_live_part(as_user, world):
    response = as_user("viewer").get("/overview/live", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="live"') and "<html" not in html


def test_letter_page_shows_everything_and_audits_the_view(as_user, world, sessions):
    html = as_user("viewer").get(f"/letters/{world['held']}").get_data(as_text=True)
    assert "<mark>митинг</mark>" in html
    assert "mentions a rally" in html
    assert "m***@e***.org" in html and "maria.writer@example.org" not in html
    assert "Reveal the address" not in html  # viewers may not
    with sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "view_letter"))
    assert entry.username == "viewer" and entry.letter_id == world["held"]


def test_letter_page_names_what_the_next_time_is_for(as_user, seed):
    soon = utcnow() + timedelta(minutes=30)
    submitted = seed.letter("SUBMITTED", provider_number="FP-2026-000042", attempts=1,
                            next_attempt_at=soon)
    retrying = seed.letter("UNKNOWN", attempts=2, next_attempt_at=soon)
    client = as_user("viewer")
    html = " ".join(client.get(f"/letters/{submitted}").get_data(as_text=True).split())
    assert "1 · status asked again" in html and "next try" not in html
    html = " ".join(client.get(f"/letters/{retrying}").get_data(as_text=True).split())
    assert "2 · next try" in html and "status asked again" not in html


def test_letter_body_with_script_is_shown_as_text(as_user, seed):
    letter_id = seed.letter("HELD", body='<script>alert("x")</script> <img src=x onerror=1>',
                            findings=[{**HELD_FINDINGS[0], "passages": ["<script>"]}])
    client = as_user("admin")
    for path in (f"/letters/{letter_id}", "/moderation"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html.replace(
            "<mark>", "").replace("</mark>", "")


def test_reveal_is_admin_only_needs_a_reason_and_is_audited(as_user, world, sessions):
    path = f"/letters/{world['held']}/reveal"
    viewer = as_user("viewer")
    assert viewer.post(path, data={"reason": "curious", "csrf_token": csrf_token(viewer, "/")}
                       ).status_code == 403
    admin = as_user("admin")
    token = csrf_token(admin, "/")
    assert admin.post(path, data={"reason": "", "csrf_token": token}).status_code == 302
    html = admin.post(path, data={"reason": "writer asked to confirm their letter",
                                  "csrf_token": token}).get_data(as_text=True)
    assert "maria.writer@example.org" in html
    with sessions() as session:
        reveals = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "reveal_address")).all()
    assert [(r.username, r.letter_id, r.detail) for r in reveals] == [
        ("admin", world["held"], "writer asked to confirm their letter")]


def test_pages_render_with_seeded_data(as_user, world):
    client = as_user("admin")
    expectations = {
        "/moderation": [f"Letter #{world['held']}", "Approve", "Return to writer"],
        "/failures": ["timeout after the request left", "provider refused: facility closed",
                      "bad MIME", "It was submitted"],
        "/desk": ["Take a letter", "ФСИН-Письмо", "ИК-1 Москва", "1 waiting"],
        "/replies": ["FP-2026-000124", "/reply-pages/", "FP-2026-000123"],  # suggestion
        "/letters": [f"#{world['submitted']}"],
        "/letters?state=FAILED": [f"#{world['failed']}"],
        "/prisoners": ["IVA1", "Иванов Иван Иванович"],
        "/prisoners/new": ["Last name"],
        "/facilities": ["ИК-1 Москва", "FAC-1", "stopped nothing yet"],
        "/prisoners/import": ["CSV file"],
        "/prisoners/import-list": ["List file", "XLSX"],
        "/users": ["moderator", "Add an organizer"],
        "/audit": ["login"],
    }
    for path, needles in expectations.items():
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for needle in needles:
            assert needle in html, (path, needle)


def test_reply_page_image_is_served_with_nosniff(as_user, world, sessions):
    with sessions() as session:
        page_id = session.scalar(select(ReplyPage.id))
    response = as_user("viewer").get(f"/reply-pages/{page_id}")
    assert response.status_code == 200 and response.data == PNG
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unsafe_attachment_is_a_download_never_rendered(as_user, seed, sessions):
    from gateway.models import LetterAttachment
    letter_id = seed.letter("HELD")
    with sessions() as session:
        att = LetterAttachment(letter_id=letter_id, filename="photo.svg",
                               content_type="image/svg+xml", data=b"<svg onload=alert(1)>")
        session.add(att)
        session.commit()
        att_id = att.id
    response = as_user("viewer").get(f"/letters/{letter_id}/attachments/{att_id}?inline=1")
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")


def test_healthz_and_metrics(app, world, sessions, as_user):
    health = app.test_client().get("/healthz")  # open: the orchestrator has no login
    assert health.status_code == 200 and health.data == b"ok"
    text = as_user("viewer").get("/metrics").get_data(as_text=True)
    assert 'gateway_letters{state="HELD"} 1.0' in text
    assert 'gateway_letters{state="SUBMITTED"} 1.0' in text
    assert 'gateway_provider_paused{provider="http"} 1.0' in text
    assert 'gateway_provider_circuit_open{provider="desk"} 1.0' in text
    assert "gateway_broker_up 0.0" in text  # no Redis at the test's broker URL: tolerated
    with sessions() as session:
        assert session.scalar(select(OutboundMail.id)) is None


def test_metrics_read_queue_depths_from_redis(settings, sessions, redis_url):
    import redis

    from gateway.web.app import create_app
    client = redis.Redis.from_url(redis_url)
    client.rpush("letters", "a", "b", "c")
    client.rpush("mail", "m")
    app = create_app(settings.model_copy(update={"broker_url": redis_url,
                                                 "metrics_token": SecretStr("t" * 32)}))
    text = app.test_client().get("/metrics", headers={"Authorization": "Bearer " + "t" * 32}
                                 ).get_data(as_text=True)
    assert "gateway_broker_up 1.0" in text
    assert 'gateway_queue_depth{queue="letters"} 3.0' in text
    assert 'gateway_queue_depth{queue="intake"} 0.0' in text
    assert 'gateway_queue_depth{queue="mail"} 1.0' in text
