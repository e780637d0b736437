"""The benchmark counts the servers' CPU beside the gateway's (bench/README.md: the ratio
compares what the machine spends a letter): it must find the PostgreSQL backend that
serves its database, and not one of another database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from bench.footprint import Sampler, backends_of

pytestmark = pytest.mark.postgres


def test_the_sampler_counts_the_backend_that_serves_the_benchmarks_database(pg_url):
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            mine = conn.scalar(text("SELECT pg_backend_pid()"))
            assert mine in backends_of(pg_url)()
            assert mine not in backends_of(pg_url.rsplit("/", 1)[0] + "/another_db")()
            sampler = Sampler()
            sampler.watch_cpu("postgres", backends_of(pg_url))
            before = sampler.cpu().get("postgres", 0.0)
            conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)"))
            spent = sampler.cpu()["postgres"] - before
            assert spent > 0.05, spent  # the backend's own work, seen by the sampler
    finally:
        engine.dispose()
