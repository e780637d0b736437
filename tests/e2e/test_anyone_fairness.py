"""Fifty "to anyone" letters arriving together, checked by two worker processes at once,
spread over ten prisoners within one of each other (5 ± 1), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from gateway.directory import DEMO_CSV
from tests.e2e.stack import WARM, Stack, letter

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXTRA = [("K901", "Кузнецова", "Вера", "Ильинична", "1981"),
         ("K902", "Орлов", "Глеб", "Петрович", "1976"),
         ("K903", "Беляев", "Марк", "Андреевич", "1994"),
         ("K904", "Зайцева", "Нина", "Олеговна", "1987")]


def ten_prisoners(path) -> str:
    """The demo directory (six) and four more, so "anyone" has ten to choose from."""
    with open(DEMO_CSV, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    template = rows[0]
    rows += [{**template, "code": code, "last_name": last, "first_name": first,
              "middle_name": middle, "birth_year": year, "facility_id": template["facility_id"]}
             for code, last, first, middle, year in EXTRA]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_fifty_anyone_letters_over_two_workers_spread_evenly(make_stack, database_url):
    # Batches of 25, so that the fifty letters make two batches for the two workers.
    stack: Stack = make_stack(database_url, extra_env={"GATEWAY_SENDER_DAILY_LIMIT": "1000",
                                                       "GATEWAY_TASK_BATCH": "25"})
    stack.COMMANDS = {**Stack.COMMANDS, "worker2": Stack.COMMANDS["worker"]}
    stack.start(processes=())
    stack.gateway("prisoners", "import", ten_prisoners(stack.root / "ten.csv"))
    able = stack.query("SELECT id FROM prisoners WHERE can_receive AND status != 'retired'")
    assert len(able) == 10
    for i in range(50):  # all in the inbox before anyone reads it: they arrive together
        stack.send(letter("Любому", WARM + f"\n\nP.S. {i}", sender=f"Writer {i} <w{i}@example.org>"))
    # Two worker processes, each with its own pool: the two batches of 25 are checked at once.
    for name in ("worker", "worker2", "beat", "watch"):
        stack.start_process(name)
    try:
        check_spread(stack)
    finally:
        stack.kill("worker2")  # SIGKILL like the first worker (the stack stops only its own)


def check_spread(stack: Stack) -> None:
    def assigned():
        rows = stack.query("SELECT prisoner_id, state FROM letters")
        done = [r for r in rows if r["state"] not in ("RECEIVED",)]
        return rows if len(rows) == 50 and len(done) == 50 else None

    rows = stack.wait("all fifty letters checked", assigned, timeout=180)
    counts = Counter(r["prisoner_id"] for r in rows)
    assert None not in counts, rows
    assert len(counts) == 10 and min(counts.values()) >= 4 and max(counts.values()) <= 6, counts
    assert max(counts.values()) - min(counts.values()) <= 1, counts

    def checks():  # the log line follows the commit: wait for it
        logs = [(stack.root / f"{name}.log").read_text(errors="replace")
                for name in ("worker", "worker2")]
        lines = [line for log in logs for line in log.splitlines()
                 if "workers.tasks.check_letters" in line and "succeeded" in line]
        return lines if len(lines) >= 2 else None

    stack.wait("the fifty checked in at least two batches", checks, timeout=30)
