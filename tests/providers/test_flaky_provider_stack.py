"""Through the real stack (Celery worker and beat, Redis, Dovecot, SMTP, the simulator over
HTTP) with the simulator failing half of its requests *after* doing the work: every letter
is still charged exactly once, and every reply reaches its writer exactly once."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import WARM, letter

pytestmark = [pytest.mark.providers, pytest.mark.timeout(420)]

NAMES = ["Петровой Марии", "Иванову Ивану", "Сидоренко Олегу", "K105", "Ковалёву Петру",
         "Смирновой Екатерине"]
FAST_RETRIES = {
    "GATEWAY_MAX_SUBMIT_ATTEMPTS": "40",
    "GATEWAY_SUBMIT_RETRY_BASE_S": "0.5",
    "GATEWAY_SUBMIT_RETRY_CAP_S": "3",
    "GATEWAY_BREAKER_THRESHOLD": "6",
    "GATEWAY_BREAKER_COOLDOWN_S": "2",
    "GATEWAY_BREAKER_MAX_COOLDOWN_S": "4",
    "GATEWAY_PROVIDER_TIMEOUT": "2",
}


def test_half_the_requests_failing_after_the_work_still_charges_once_and_forwards_once(
        make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}", extra_env=FAST_RETRIES).start()
    # Half of every /v1 call fails after the service did the work: charged, answer lost.
    stack.sim("POST", "/_sim/faults", json={"error_rate": 0.5, "status": 500, "mode": "after"})
    writers = [f"w{i}@example.org" for i in range(len(NAMES))]
    for i, (name, writer) in enumerate(zip(NAMES, writers, strict=True)):
        stack.send(letter(name, WARM + f"\n\nP.S. {i}", sender=f"Writer {i} <{writer}>"))

    stack.wait("every letter SUBMITTED", lambda: [r["state"] for r in stack.letters()]
               == ["SUBMITTED"] * len(NAMES), timeout=240)
    at_provider = stack.sim_letters()
    assert len(at_provider) == len(NAMES)
    assert [m["charges"] for m in at_provider] == [1] * len(NAMES)
    ledger = stack.sim("GET", "/_sim/ledger").json()["charges"]
    assert len(ledger) == len(NAMES)
    attempts = stack.query("SELECT outcome, count(*) AS n FROM submission_attempts GROUP BY outcome")
    print("attempt outcomes:", attempts)
    numbers = {r["provider_number"] for r in stack.letters()}
    assert numbers == {m["number"] for m in at_provider}

    # Every prisoner answers; the scan comes by API (flaky too) and by e-mail.
    for number in numbers:
        r = stack.sim("POST", f"/_sim/letters/{number}/reply", json={"pages": 1, "by_email": True})
        assert r.status_code == 201, r.text

    def forwards(writer: str) -> list:
        return [m for m in stack.mail_to(writer) if any(
            p.get_content_type() == "image/jpeg" for p in m.message.iter_attachments())]

    stack.wait("a forward to every writer", lambda: all(forwards(w) for w in writers),
               timeout=120)
    stack.wait("both copies of every reply recorded", lambda: len(
        stack.query("SELECT id FROM replies")) == 2 * len(NAMES), timeout=60)
    time.sleep(3)
    assert [len(forwards(w)) for w in writers] == [1] * len(writers)
    states = stack.query("SELECT state, count(*) AS n FROM replies GROUP BY state ORDER BY state")
    assert states == [{"state": "DUPLICATE", "n": len(NAMES)},
                      {"state": "FORWARDED", "n": len(NAMES)}]
    assert all(m["charges"] == 1 for m in stack.sim_letters())
