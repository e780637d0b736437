"""Transport: SMTP and IMAP verify certificates and host names, offer STARTTLS and
implicit TLS, and never send a password in clear except to this machine. Real servers:
aiosmtpd and Dovecot with certificates from a throwaway CA."""

from __future__ import annotations

import logging
import time

import pytest

from gateway import connection_health
from gateway.config import Settings
from gateway.crypto import seal
from gateway.mail.transport import TransportError, open_imap, open_smtp, resolve_security
from gateway.models import OutboundMail
from gateway.pipeline import outbox
from gateway.web.overview import compute
from tests.privacy.conftest import SMTP_PASSWORD, SMTP_USER, own_public_address

pytestmark = pytest.mark.privacy

MAIL = b"From: letters@gateway.local\r\nSubject: test\r\n\r\nhello\r\n"


def _send(host: str, port: int, security: str, ca_file, **login) -> None:
    smtp = open_smtp(host, port, security=security, timeout=5, ca_file=ca_file, **login)
    try:
        smtp.sendmail("letters@gateway.local", ["anna@example.org"], MAIL)
    finally:
        smtp.quit()


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_smtp_with_a_trusted_ca_logs_in_and_sends_over_tls(pki, tls_smtp, implicit):
    server = tls_smtp(pki["good"], implicit=implicit)
    _send(server.host, server.port, "tls" if implicit else "starttls", pki["ca"].path,
          user=SMTP_USER, password=SMTP_PASSWORD)
    assert server.seen.logins == [(SMTP_USER, SMTP_PASSWORD)]
    [(rcpts, data, over_tls)] = server.seen.messages
    assert rcpts == ["anna@example.org"] and b"hello" in data and over_tls


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_smtp_with_an_unknown_ca_is_refused_before_the_password(pki, tls_smtp, implicit):
    server = tls_smtp(pki["foreign"], implicit=implicit)
    with pytest.raises(TransportError, match="certificate is not trusted"):
        _send(server.host, server.port, "tls" if implicit else "starttls", pki["ca"].path,
              user=SMTP_USER, password=SMTP_PASSWORD)
    assert server.seen.logins == [] and server.seen.messages == []


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_smtp_with_a_wrong_host_name_is_refused(pki, tls_smtp, implicit):
    server = tls_smtp(pki["good"], implicit=implicit)  # valid for 127.0.0.1, not "localhost"
    with pytest.raises(TransportError, match="not valid for this host name"):
        _send("localhost", server.port, "tls" if implicit else "starttls", pki["ca"].path,
              user=SMTP_USER, password=SMTP_PASSWORD)
    assert server.seen.logins == [] and server.seen.messages == []


def test_smtp_without_starttls_is_refused_not_downgraded(tls_smtp):
    server = tls_smtp(None)  # offers no STARTTLS
    with pytest.raises(TransportError, match="does not offer STARTTLS"):
        _send(server.host, server.port, "starttls", None)
    assert server.seen.messages == []


def test_the_system_trust_store_is_the_default(pki, tls_smtp):
    """Without a CA file the test CA is not trusted: verification is on by default."""
    server = tls_smtp(pki["good"], implicit=True)
    with pytest.raises(TransportError, match="not trusted"):
        _send(server.host, server.port, "tls", None)


@pytest.mark.parametrize("protocol", ["SMTP", "IMAP"])
def test_plain_text_login_to_another_host_is_refused_before_connecting(listener, protocol):
    address = own_public_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    with pytest.raises(TransportError, match="refusing to send the password in plain text"):
        if protocol == "SMTP":
            open_smtp(address, listener.port, security="none", timeout=2, user="u", password="p")
        else:
            open_imap(address, listener.port, security="none", timeout=2, user="u",
                      password="p")
    time.sleep(0.3)
    assert listener.accepted == 0


def test_plain_text_to_loopback_still_works(tls_smtp):
    """The demo and the tests: a local relay without TLS."""
    server = tls_smtp(None)
    _send(server.host, server.port, "none", None)
    assert len(server.seen.messages) == 1


@pytest.mark.parametrize("port,security", [(None, "starttls"), (993, "tls")])
def test_imap_with_a_trusted_ca_works(pki, tls_dovecot, port, security):
    client = open_imap(tls_dovecot.host, port or tls_dovecot.port, security=security,
                       timeout=5, user="letters", password="secret", ca_file=pki["ca"].path) \
        if port is None else \
        open_imap(tls_dovecot.host, tls_dovecot.tls_port, security=security, timeout=5,
                  user="letters", password="secret", ca_file=pki["ca"].path)
    try:
        assert client.select_folder("INBOX")[b"EXISTS"] >= 0
        assert client._imap.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        client.logout()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_imap_with_an_unknown_ca_or_wrong_host_is_refused(pki, tls_dovecot, security):
    port = tls_dovecot.port if security == "starttls" else tls_dovecot.tls_port
    with pytest.raises(TransportError, match="certificate is not trusted"):
        open_imap(tls_dovecot.host, port, security=security, timeout=5, user="letters",
                  password="secret", ca_file=pki["stranger"].path)
    with pytest.raises(TransportError, match="not valid for this host name"):
        open_imap("localhost", port, security=security, timeout=5, user="letters",
                  password="secret", ca_file=pki["ca"].path)


def test_security_modes_default_to_safe_choices():
    assert resolve_security("auto", "mail.example.org", 587, "SMTP") == "starttls"
    assert resolve_security("auto", "mail.example.org", 465, "SMTP") == "tls"
    assert resolve_security("auto", "127.0.0.1", 2525, "SMTP") == "none"
    assert resolve_security("auto", "imap.example.org", 993, "IMAP") == "tls"
    assert resolve_security("auto", "imap.example.org", 143, "IMAP") == "starttls"
    # The old switches keep working
    assert Settings(smtp_starttls=True, _env_file=None).smtp_mode() == "starttls"
    assert Settings(imap_ssl=True, _env_file=None).imap_mode() == "tls"
    assert Settings(smtp_host="relay.example.org", smtp_security="tls",
                    _env_file=None).smtp_mode() == "tls"


def test_a_wrong_certificate_is_an_error_in_the_log_and_on_the_dashboard(
        pki, tls_smtp, sessions, caplog):
    server = tls_smtp(pki["foreign"], implicit=True)
    settings = Settings(smtp_host=server.host, smtp_port=server.port, smtp_security="tls",
                        tls_ca_file=pki["ca"].path, smtp_timeout=5, secret_key="s" * 40,
                        _env_file=None)
    with sessions() as session:
        row = OutboundMail(dedup_key="t:1", kind="reply", message=MAIL,
                           recipient_sealed=seal("s" * 40, "anna@example.org"))
        session.add(row)
        session.commit()
        row_id = row.id
    with caplog.at_level(logging.ERROR, logger="gateway.pipeline.outbox"):
        counts = outbox.send_pending(sessions, settings, [row_id])
    assert counts["sent"] == 0 and counts["retry"] == 1 and server.seen.messages == []
    assert any("certificate is not trusted" in r.getMessage() for r in caplog.records)
    with sessions() as session:
        alerts = [a.text for a in compute(session, queues={}).alerts()]
        assert session.get(OutboundMail, row_id).state == "PENDING"
    assert any(a.startswith("Outgoing mail (SMTP) refused") and "not trusted" in a
               for a in alerts), alerts

    # Fixed (the server gets a certificate from the trusted CA): the alert goes.
    good = tls_smtp(pki["good"], implicit=True)
    settings = settings.model_copy(update={"smtp_port": good.port})
    with sessions() as session:
        session.get(OutboundMail, row_id).next_attempt_at = None
        session.commit()
    assert outbox.send_pending(sessions, settings, [row_id])["sent"] == 1
    with sessions() as session:
        assert connection_health.problems(session) == ()



def test_an_untrusted_inbox_is_an_alert_until_it_is_fixed(pki, tls_dovecot, sessions, caplog):
    from gateway.crypto import Keyring
    from gateway.pipeline.intake import Mailbox, ingest

    keys = Keyring("transport-tls-test-secret-0123456789abcdef")

    def inbox(ca) -> Mailbox:
        return Mailbox(tls_dovecot.host, tls_dovecot.tls_port, "letters", "secret",
                       security="tls", ca_file=str(ca.path), timeout=5)

    with caplog.at_level(logging.ERROR, logger="gateway.connection_health"), \
            pytest.raises(TransportError, match="not trusted"):
        with connection_health.watched(sessions, "imap-inbox"):
            ingest(sessions, inbox(pki["stranger"]), keys=keys)
    assert any("The shared inbox (IMAP)" in r.getMessage() for r in caplog.records)
    with sessions() as session:
        alerts = [a.text for a in compute(session, queues={}).alerts()]
    assert any(a.startswith("The shared inbox (IMAP) refused") for a in alerts), alerts
    with connection_health.watched(sessions, "imap-inbox"):
        ingest(sessions, inbox(pki["ca"]), keys=keys)
    with sessions() as session:
        assert connection_health.problems(session) == ()
