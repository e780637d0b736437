"""The http adapter's connections to the provider: letters ride kept-alive connections (a new
one a letter costs more than the POST), and a certificate the gateway does not trust stops a
submission before any byte of it leaves, so the letter waits as not sent rather than
becoming an UNKNOWN for a person to settle."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.providers.base import Recipient, Submission, TransientError
from gateway.providers.http import HttpProvider
from tests.browser.tls_proxy import TLSProxy
from tests.providers.conftest import TOKEN

pytestmark = pytest.mark.providers


def _submission(ref: str) -> Submission:
    return Submission(facility_id="77-sizo-1",
                      recipient=Recipient("Иванова", "Мария", "Петровна", 1990),
                      author_name="Друзья", author_email="replies@gateway.local",
                      author_phone="+70000000000", text="Здравствуйте, Мария! " * 20,
                      reply_ordered=False, client_ref=ref)


def test_calls_ride_one_kept_alive_connection(http):
    accepted = [http.submit(_submission(f"ka-{i}"), f"ka-{i}") for i in range(5)]
    for _ in range(5):
        assert http.balance()[1] == "RUB"
    assert len({a.number for a in accepted}) == 5 and all(a.amount > Decimal(0) for a in accepted)
    assert http.pool.num_connections == 1


def test_an_untrusted_certificate_is_refused_before_the_letter_leaves(sim, tmp_path):
    proxy = TLSProxy(sim.port, tmp_path, "127.0.0.1").start()
    provider = HttpProvider(f"https://127.0.0.1:{proxy.port}", TOKEN, timeout=5.0)
    try:
        with pytest.raises(TransientError, match="TLS") as refused:
            provider.submit(_submission("tls-1"), "tls-1")
    finally:
        provider.close()
        proxy.stop()
    assert refused.value.maybe_sent is False  # it waits and is tried again, never UNKNOWN
    assert proxy.requests == []  # not one request line reached the other side
