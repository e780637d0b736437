"""Confirmation and authentication are separate defences, organizers can vouch for the
writers they know (`gateway writers confirm`), and mail claiming the organization's own
domain without proof is never answered."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from gateway.crypto import address_hash
from gateway.models import Letter, Sender
from gateway.states import LetterState as S
from tests.intake.conftest import GATEWAY, LETTERS, SECRET, mail

pytestmark = [pytest.mark.intake, pytest.mark.rules]

OWN_ID = "mx.gw.example"
PASS = f"{OWN_ID}; dkim=pass header.d=example.org; spf=pass; dmarc=pass header.from=example.org"
FAIL = f"{OWN_ID}; dkim=fail header.d=example.org; spf=fail; dmarc=fail header.from=example.org"


def test_first_letter_confirmation_off_still_holds_mail_that_fails_dmarc(gw):
    gw.settings.confirm_senders = False
    gw.settings.own_authserv_id = OWN_ID
    [passed] = gw.send(mail("Петровой Марии", Authentication_Results=PASS))
    assert gw.letter(passed).state == S.READY  # a new writer goes on: confirmation is off
    [failed] = gw.send(mail("Петровой Марии", LETTERS[1], Authentication_Results=FAIL))
    letter = gw.letter(failed)
    assert letter.state == S.AWAITING_SENDER and "did not vouch" in letter.reason
    [notice] = gw.outbox("confirm")
    assert notice.letter_id == failed


def test_the_dmarc_hold_has_its_own_switch(gw):
    gw.settings.own_authserv_id = OWN_ID
    gw.settings.confirm_failed_authentication = False
    gw.settings.confirm_senders = False
    [failed] = gw.send(mail("Петровой Марии", Authentication_Results=FAIL))
    assert gw.letter(failed).state == S.READY
    gw.settings.confirm_senders = True  # and first letters are asked for on their own
    [first] = gw.send(mail("Петровой Марии", LETTERS[1], sender="Новый <new@example.org>"))
    assert gw.letter(first).state == S.AWAITING_SENDER
    assert "first letter" in gw.letter(first).reason


def _confirm_cli(gw, text: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "known.txt"
    path.write_text(text, encoding="utf-8")
    env = {"GATEWAY_DATABASE_URL": gw.settings.database_url, "GATEWAY_SECRET_KEY": SECRET,
           "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "writers", "confirm",
                           str(path)], env=env, capture_output=True, text=True, timeout=120)


def test_writers_confirm_marks_known_writers_and_their_letters_go_on(gw, tmp_path):
    [waiting] = gw.send(mail("Петровой Марии", sender="Анна <Anna@Example.org>"))
    assert gw.letter(waiting).state == S.AWAITING_SENDER

    done = _confirm_cli(gw, "# known writers\nanna@example.org\n\n<boris@example.org>\n"
                            "not an address\n", tmp_path)
    assert done.returncode == 1  # one line refused, the rest done
    out = " ".join(done.stdout.split())  # the console wraps long lines
    assert "confirmed 2 writer(s)" in out and "1 waiting letter(s) go on" in out
    assert "skipped: n***" in out and "not an address, skipped: not" not in out  # masked
    assert gw.letter(waiting).state == S.RECEIVED  # back to the checks (the sweeper's turn)
    gw.check([waiting])
    assert gw.letter(waiting).state == S.READY
    with gw.sessions() as session:  # only keyed hashes are stored
        hashes = set(session.scalars(select(Sender.address_hash)
                                     .where(Sender.verified_at.is_not(None))))
    assert hashes == {address_hash(SECRET, "anna@example.org"),
                      address_hash(SECRET, "boris@example.org")}
    [new] = gw.send(mail("Петровой Марии", LETTERS[1], sender="Борис <boris@example.org>"))
    assert gw.letter(new).state == S.READY and gw.outbox("confirm")[-1].letter_id == waiting


@pytest.mark.parametrize("auth", [None, FAIL])
def test_no_notice_to_our_own_domain_without_proof(gw, auth):
    """Someone writes From an address of our own domain (not one of the gateway's own
    addresses, which are robots anyway): unproven, it is never written to."""
    gw.settings.own_authserv_id = OWN_ID
    domain = GATEWAY.rpartition("@")[2]
    headers = {"Authentication_Results": auth} if auth else {}
    [letter_id] = gw.send(mail("Неизвестному Адресату", sender=f"Admin <admin@{domain}>",
                               **headers))
    assert gw.letter(letter_id).state == S.REJECTED  # still decided; only the notice is not sent
    assert gw.outbox() == []
    [held] = gw.send(mail("Петровой Марии", LETTERS[2], sender=f"Vol <vol@news.{domain}>"))
    letter: Letter = gw.letter(held)
    assert letter.state == S.HELD and "own domain" in letter.reason  # not asked to confirm
    assert letter.sender_sealed is None and gw.outbox() == []


def test_a_proven_address_of_our_domain_is_answered(gw):
    gw.settings.own_authserv_id = OWN_ID
    domain = GATEWAY.rpartition("@")[2]
    proven = f"{OWN_ID}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
    [letter_id] = gw.send(mail("Неизвестному Адресату", sender=f"Admin <admin@{domain}>",
                               Authentication_Results=proven))
    assert gw.letter(letter_id).state == S.REJECTED
    assert [m.kind for m in gw.outbox()] == ["unknown_recipient"]
