"""Every birthday reminder carries a one-click unsubscribe (RFC 8058 headers and a visible
link), served by the real dashboard app over HTTP without a login: GET only asks, POST (a
mail provider's one-click, with no CSRF token) forgets the subscription; the link names no
address; a forged or tampered token does nothing; every other POST still needs its CSRF
token."""

from __future__ import annotations

import threading
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from gateway import birthday_reminders, birthdays
from gateway.crypto import keyring, unseal_bytes
from gateway.models import BirthdaySubscriber, Prisoner, utcnow
from gateway.web.app import create_app
from tests.intake.conftest import SECRET

pytestmark = pytest.mark.campaigns

ANNA, BORIS = "anna@example.org", "boris@example.org"


@pytest.fixture
def served(gw):
    app = create_app(gw.settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # The link in the mail points at this server, as GATEWAY_WEB_PUBLIC_URL would.
    gw.settings.web_public_url = f"http://127.0.0.1:{server.port}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)


def _subscribe(gw, *addresses: str) -> None:
    keys = keyring(gw.settings)
    today = date.today()
    with gw.sessions() as session:
        session.scalar(select(Prisoner).where(Prisoner.code == "K101")).birth_date = \
            date(1980, today.month, min(today.day, 28))
        session.add_all(BirthdaySubscriber(address_hash=keys.address_hash(a),
                                           address_sealed=keys.seal(a), confirmed_at=utcnow())
                        for a in addresses)
        session.commit()
        assert birthdays.make_campaigns(session, today, 14)
        birthday_reminders.queue_reminders(session, gw.settings, today)
        session.commit()


def _subscribers(gw) -> int:
    with gw.sessions() as session:
        return session.scalar(select(func.count()).select_from(BirthdaySubscriber))


def test_one_click_unsubscribe_through_the_dashboard(gw, served):
    _subscribe(gw, ANNA, BORIS)
    anna, boris = sorted(gw.outbox("birthday_reminder"), key=lambda r: gw.recipient(r))
    assert gw.recipient(anna) == ANNA
    sent = gw.message(anna)
    url = sent["List-Unsubscribe"].strip("<>")
    assert url.startswith(served + "/unsubscribe/")
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire the URL is one plain line: an RFC 2047-encoded one is read by nobody.
    raw = unseal_bytes(SECRET, anna.message)
    assert f"List-Unsubscribe: <{url}>".encode() in raw
    text = sent.get_content()
    assert url in text and text.index("Отписаться в один клик") < text.index(
        "Unsubscribe in one click") and "STOP" in text  # the reply still works too
    # The link names a row, not a person: neither the address nor its keyed hash.
    token = url.rpartition("/")[2]
    assert "anna" not in url.lower() and keyring(gw.settings).address_hash(ANNA) not in url

    with httpx.Client(follow_redirects=False) as client:
        page = client.get(url)  # a link preview or a mail scanner: nothing happens
        assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
        assert page.text.index("Отписаться от напоминаний") < page.text.index("Stop the birthday")
        assert ANNA not in page.text and _subscribers(gw) == 2

        # Tampered, or made up: refused, and nobody is unsubscribed.
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        assert client.post(f"{served}/unsubscribe/{forged}").status_code == 404
        assert client.get(f"{served}/unsubscribe/1.2.x").status_code == 404
        assert _subscribers(gw) == 2

        # The mail provider's one-click POST: no cookie, no CSRF token.
        done = client.post(url, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "Готово" in done.text, done.text
        assert _subscribers(gw) == 1  # only Anna's subscription is forgotten
        assert client.post(url).status_code == 200  # a second click is harmless

        # Every other POST keeps its CSRF check, and every other page its login.
        assert client.post(f"{served}/login", data={"username": "x", "password": "y"}
                           ).status_code == 400
        assert client.get(f"{served}/campaigns").status_code == 302

    with gw.sessions() as session:  # no further reminder for Anna; Boris keeps his
        left = session.scalar(select(BirthdaySubscriber))
        assert left.address_hash == keyring(gw.settings).address_hash(BORIS)
    assert gw.recipient(boris) == BORIS
