"""A released prisoner gets no paid letter: the list's status, imported with `gateway
prisoners import`, reaches the checks of a real worker."""

from __future__ import annotations

import pytest

from gateway.directory import DEMO_CSV
from tests.e2e.stack import WARM, letter

pytestmark = [pytest.mark.e2e, pytest.mark.rules, pytest.mark.timeout(240)]


def test_a_letter_to_a_released_prisoner_is_returned_unpaid(make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}").start()
    lines = DEMO_CSV.read_text(encoding="utf-8").splitlines()
    rows = [lines[0] + ",status"] + [
        line + (",Освобождена" if line.startswith("K102,") else ",в заключении")
        for line in lines[1:]]
    directory = tmp_path / "list.csv"
    directory.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert "updated 1, unchanged 5" in stack.gateway("prisoners", "import", str(directory))

    stack.send(letter("Петровой Марии", WARM, sender="Анна <anna@example.org>"))
    stack.send(letter("Иванову Ивану", WARM.replace("Мария", "Иван"),
                      sender="Вера <vera@example.org>"))
    stack.wait("one returned, one submitted", lambda: sorted(
        r["state"] for r in stack.letters()) == ["REJECTED", "SUBMITTED"])
    assert [m["recipient"]["last_name"] for m in stack.sim_letters()] == ["Иванов"]
    notice = stack.wait("the notice", lambda: stack.mail_to("anna@example.org"))[0]
    text = " ".join(notice.message.get_body(("plain",)).get_content().split())
    assert "адресат вышел на свободу" in text and "has been released" in text
