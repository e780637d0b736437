"""Where a letter's time goes: each pipeline step run in this process, on the benchmark's
letters, PostgreSQL, the simulator and a counting SMTP sink, timed in CPU (which a busy
shared machine distorts far less than wall time) and optionally profiled.

    python -m bench.steps [--n 200] [--profile pyinstrument|cprofile]

Prints CPU ms a letter for ingest (store), check (incl. the bounded parse subprocess),
submit and notice sending, and the wall ms beside them."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

from bench.letters import WRITERS, directory, directory_csv, letters, writer
from bench.stack import CountingSink, Simulator
from gateway.devstack.postgres import throwaway_database

STATEMENTS = {"sql": 0, "commits": 0}


def count_statements(engine) -> None:
    """Count SQL statements and commits: round trips to PostgreSQL, independent of load."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_a, **_kw):
        STATEMENTS["sql"] += 1

    @event.listens_for(engine, "commit")
    def _commit(*_a, **_kw):
        STATEMENTS["commits"] += 1


@contextmanager
def timed(name: str, n: int, out: dict, profiler: str | None):
    me = psutil.Process()
    before = dict(STATEMENTS)

    def cpu() -> float:
        total = sum(me.cpu_times()[:2])
        for child in me.children(recursive=True):  # the bounded parser's workers
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        return total

    prof = None
    if profiler == "pyinstrument":
        from pyinstrument import Profiler
        prof = Profiler(interval=0.001)
        prof.start()
    elif profiler == "cprofile":
        prof = cProfile.Profile()
        prof.enable()
    c0, w0 = cpu(), time.perf_counter()
    yield
    c1, w1 = cpu(), time.perf_counter()
    out[name] = {"cpu_ms": (c1 - c0) * 1000 / n, "wall_ms": (w1 - w0) * 1000 / n,
                 "sql": (STATEMENTS["sql"] - before["sql"]) / n,
                 "commits": (STATEMENTS["commits"] - before["commits"]) / n}
    print(f"{name:>8}: {out[name]['cpu_ms']:7.2f} ms CPU a letter, "
          f"{out[name]['wall_ms']:7.2f} ms wall, {out[name]['sql']:5.1f} SQL statements, "
          f"{out[name]['commits']:4.1f} commits", flush=True)
    if profiler == "pyinstrument":
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False)[:6000])
    elif profiler == "cprofile":
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(int(os.environ.get("BENCH_STATS", "25")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.steps")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--profile", choices=("pyinstrument", "cprofile"))
    ap.add_argument("--only", default="store,check,submit,send")
    ap.add_argument("--history", type=int, default=0,
                    help="letters of history made in SQL first (as the overview part does)")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    out: dict = {}
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="gw-steps-"))
        url = stack.enter_context(throwaway_database())
        sim = Simulator(root).start()
        stack.callback(sim.stop)
        sim.request("POST", "/_sim/balance", json={"amount": "100000000.00"})
        sink = CountingSink().start()
        stack.callback(sink.stop)
        os.environ.update({
            "GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET_KEY": "bench-secret-0123456789abcdef0123456789",
            "GATEWAY_PROVIDER_URL": sim.url, "GATEWAY_PROVIDER_TOKEN": "bench-token",
            "GATEWAY_SMTP_HOST": sink.host, "GATEWAY_SMTP_PORT": str(sink.port)})
        from gateway.config import Settings
        from gateway.crypto import keyring
        from gateway.db import session_factory
        from gateway.directory import import_rows, read_rows
        from gateway.migrate import upgrade
        from gateway.pipeline import checking, outbox, submission
        from gateway.pipeline.intake import Mailbox, store_messages
        from gateway.providers.registry import open_provider

        settings = Settings()
        upgrade(url)
        if args.history:
            from bench.overview import populate
            print(f"history: {args.history:,} letters made in SQL")
            populate(url, args.history, log=print)
        sessions = session_factory(url)
        from gateway.db import engine_for
        count_statements(engine_for(url))
        prisoners = directory(200)
        with sessions() as session:
            import_rows(session, read_rows(directory_csv(prisoners, root / "p.csv")))
            session.commit()
        from bench.stack import Gateway
        Gateway.seed_writers(type("G", (), {"env": {"GATEWAY_SECRET_KEY": "bench-secret-0123456789abcdef0123456789"},
                                            "database_url": url})(),
                             [writer(i)[2] for i in range(WRITERS)])
        raws = [x.raw for x in letters(0, args.n, prisoners)]
        mailbox = Mailbox("127.0.0.1", 1, "letters", "x")
        chunks = [raws[i:i + 200] for i in range(0, len(raws), 200)]
        ids: list[int] = []
        with timed("store", args.n, out, args.profile if "store" in only else None):
            uid = 0
            for chunk in chunks:
                with sessions() as session:
                    fetched = {}
                    for raw in chunk:
                        uid += 1
                        fetched[uid] = raw
                    ids += store_messages(session, mailbox, 2, fetched, {},
                                          keys=keyring(settings))
                    session.commit()
        from gateway.mail.bounded import parse_message_bounded
        parse_message_bounded(raws[0])  # start the parse worker outside the clock
        ready: list[int] = []
        mail: list[int] = []
        with timed("check", args.n, out, args.profile if "check" in only else None):
            for i in range(0, len(ids), args.batch):
                with sessions() as session:
                    result = checking.check_letters(session, ids[i:i + args.batch], settings)
                    session.commit()
                ready += result.ready
                mail += result.mail
        print(f"          {len(ready)} ready of {len(ids)}")
        provider = open_provider("http", settings)
        with timed("submit", args.n, out, args.profile if "submit" in only else None):
            for i in range(0, len(ready), args.batch):
                result = submission.submit_many(sessions, provider, ready[i:i + args.batch],
                                                settings)
                mail += result.mail
        with timed("send", args.n, out, args.profile if "send" in only else None):
            for i in range(0, len(mail), args.batch):
                outbox.send_pending(sessions, settings, mail[i:i + args.batch])
        print(f"          {len(sink.arrivals.notices)} notices at the sink")
    total = sum(v["cpu_ms"] for v in out.values())
    sql = sum(v["sql"] for v in out.values())
    print(f"   total: {total:7.2f} ms CPU a letter, {sql:.0f} SQL statements -> at most "
          f"{2000 / total:.0f} letters/s on two cores if nothing else ran (PostgreSQL, the "
          "simulator and Celery not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
