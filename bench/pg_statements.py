"""Where PostgreSQL's time goes: `bench.steps` run against a private PostgreSQL cluster with
pg_stat_statements loaded, then the statements by their execution time a letter.

    python -m bench.pg_statements [--n 1500] [--batch 50] [--top 25]

The system's server is not touched (loading the extension needs a restart): a cluster is
made by initdb in a temporary directory (as the postgres user when run as root), started
on a free loopback port, and removed at the end. `exec ms` is the server's executor time
only: parsing, planning, commits and the protocol are not in it (the benchmark's CPU
figure for PostgreSQL has them)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psycopg

from gateway.devstack.ports import free_port, wait_for_port


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found is None:
        raise SystemExit("pg_config not found: install PostgreSQL (./scripts/test does)")
    return Path(subprocess.run([found, "--bindir"], check=True, capture_output=True,
                               text=True).stdout.strip())


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses root: run as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def private_cluster():
    """Yields the admin URL of a fresh cluster with pg_stat_statements loaded."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="gw-pgstat-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                                 "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True)
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c shared_preload_libraries=pg_stat_statements "
               "-c pg_stat_statements.track=all")
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                 "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        wait_for_port("127.0.0.1", port)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        yield url
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m",
                                     "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def top_statements(url: str, letters: int, top: int) -> list[tuple[float, float, str]]:
    """(exec ms a letter, calls a letter, statement) of the run's database, the most first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.total_exec_time, s.calls, s.query FROM pg_stat_statements s "
            "WHERE s.dbid <> (SELECT oid FROM pg_database WHERE datname = 'postgres') "
            "AND s.query !~* '^\\s*(CREATE|ALTER|DROP|COMMENT)' "
            "ORDER BY s.total_exec_time DESC LIMIT %s", (top,)).fetchall()
    return [(total / letters, calls / letters, " ".join(query.split()))
            for total, calls, query in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_statements")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    print("a private PostgreSQL cluster with pg_stat_statements ...", flush=True)
    with private_cluster() as url:
        env = dict(os.environ, GATEWAY_TEST_PG_ADMIN_URL=url.replace(
            "postgresql://", "postgresql+psycopg://"))
        subprocess.run([sys.executable, "-m", "bench.steps", "--n", str(args.n),
                        "--batch", str(args.batch)], env=env, check=True)
        rows = top_statements(url, args.n, args.top)
    print(f"\nPostgreSQL's executor time a letter, by statement (top {args.top}):")
    print(f"{'exec ms':>8} {'calls':>6}  statement")
    for per_letter, calls, query in rows:
        print(f"{per_letter:8.3f} {calls:6.2f}  {query[:110]}")
    print(f"{sum(r[0] for r in rows):8.3f}         in all (these statements)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
