"""`python -m bench.pg_statements`: the benchmark's steps on a private PostgreSQL cluster
with pg_stat_statements, and the server's time a letter by statement (bench/README.md)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from bench.pg_statements import main, private_cluster

pytestmark = [pytest.mark.perf, pytest.mark.postgres]


def test_the_private_cluster_has_the_extension_and_is_gone_after():
    with private_cluster() as url:
        with psycopg.connect(url) as conn:
            assert "pg_stat_statements" in conn.execute(
                "SHOW shared_preload_libraries").fetchone()[0]
            assert conn.execute("SELECT 1 FROM pg_extension "
                                "WHERE extname = 'pg_stat_statements'").fetchone() == (1,)
            data = conn.execute("SHOW data_directory").fetchone()[0]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert not Path(data).exists()


def test_a_run_lists_the_letters_statements_a_letter(capfd):
    assert main(["--n", "20", "--batch", "10", "--top", "60"]) == 0
    out = capfd.readouterr().out
    assert "20 notices at the sink" in out  # the steps ran through, on that cluster
    rows = re.findall(r"^ +([\d.]+) +([\d.]+)  (.+)$", out, re.MULTILINE)
    by_statement = {query: (float(ms), float(calls)) for ms, calls, query in rows}
    # Each letter's events are written once a move: as many a letter as there are moves.
    events = [calls for query, (_, calls) in by_statement.items()
              if query.startswith("INSERT INTO letter_events")]
    assert events and sum(events) >= 3
    assert all(ms >= 0 for ms, _ in by_statement.values())
    assert not any(q.startswith(("CREATE", "DROP")) for q in by_statement)
