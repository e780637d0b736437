"""Where a reply's time goes: the scan re-encoding alone, then the whole poll path.

    python -m bench.replies [--n 100] [--scans 40] [--only scan,poll] [--profile]

scan: the simulator's one-page reply form (a JPEG) and the same page as a one-page PDF,
each re-encoded `--scans` times by `reencode_scan_isolated` (the reader the reply poll
uses). Prints scans a second and CPU ms a scan, counting this process and its children
(live ones, and the ones already reaped: a reader that exits after each scan still counts).

poll: `--n` letters checked and submitted to the simulator, each answered with a
one-page reply (the simulator draws them; not timed), then `poll_provider` as the worker
runs it (page listing, page GETs, re-encoding, storing, matching, forwards queued) and
`send_pending` for the forwards, with CPU ms, wall ms and SQL statements a reply. The
simulator's own CPU is not counted (it is not the gateway).

CPU, not wall time, is the figure to compare on a shared machine."""

from __future__ import annotations

import argparse
import io
import os
import resource
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

from bench.steps import STATEMENTS, count_statements


def _cpu(exclude: set[int]) -> float:
    """CPU seconds of this process and every descendant, reaped or alive, but `exclude`."""
    me = psutil.Process()
    total = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    total += sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    for child in me.children(recursive=True):
        if child.pid in exclude:
            continue
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


@contextmanager
def timed(name: str, n: int, out: dict, unit: str, exclude: set[int] = frozenset(),
          profile: bool = False):
    plural = {"reply": "replies"}.get(unit, unit + "s")
    before = dict(STATEMENTS)
    prof = None
    if profile:
        from pyinstrument import Profiler
        prof = Profiler(interval=0.001)
        prof.start()
    c0, w0 = _cpu(exclude), time.perf_counter()
    yield
    c1, w1 = _cpu(exclude), time.perf_counter()
    if prof is not None:
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False)[:8000])
    out[name] = {"cpu_ms": (c1 - c0) * 1000 / n, "wall_ms": (w1 - w0) * 1000 / n,
                 "per_s": n / (w1 - w0), "sql": (STATEMENTS["sql"] - before["sql"]) / n,
                 "commits": (STATEMENTS["commits"] - before["commits"]) / n}
    print(f"{name:>10}: {out[name]['per_s']:7.1f} {plural}/s, {out[name]['cpu_ms']:7.2f} ms CPU "
          f"a {unit}, {out[name]['wall_ms']:7.2f} ms wall, {out[name]['sql']:5.1f} SQL "
          f"statements, {out[name]['commits']:4.1f} commits", flush=True)


def scan_samples() -> dict[str, bytes]:
    from PIL import Image

    from gateway.simulator.scans import render_reply_page
    jpeg = render_reply_page("FP-2026-000123", 1, 1, "bench/1")
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(out, "PDF", resolution=150)  # a scan as the account gives it
    return {"jpeg": jpeg, "pdf": out.getvalue()}


def bench_scans(count: int, out: dict) -> None:
    from gateway.replies.scan_safety import reencode_scan_isolated
    samples = scan_samples()
    reencode_scan_isolated(samples["jpeg"])  # whatever start-up is paid once, outside the clock
    for kind, data in samples.items():
        with timed(f"scan {kind}", count, out, "scan"):
            for _ in range(count):
                [_page] = reencode_scan_isolated(data)


def bench_poll(n: int, out: dict, root: Path, profile: bool = False) -> None:
    from bench.letters import WRITERS, directory, directory_csv, letters, writer
    from bench.stack import CountingSink, Gateway, Simulator
    from gateway.devstack.postgres import throwaway_database

    with ExitStack() as stack:
        url = stack.enter_context(throwaway_database())
        sim = Simulator(root).start()
        stack.callback(sim.stop)
        sim.request("POST", "/_sim/balance", json={"amount": "100000000.00"})
        sink = CountingSink().start()
        stack.callback(sink.stop)
        secret = "bench-secret-0123456789abcdef0123456789"
        os.environ.update({
            "GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET_KEY": secret,
            "GATEWAY_PROVIDER_URL": sim.url, "GATEWAY_PROVIDER_TOKEN": "bench-token",
            "GATEWAY_SMTP_HOST": sink.host, "GATEWAY_SMTP_PORT": str(sink.port),
            "GATEWAY_SERVICE_ADAPTERS": "fsin-pismo=http,zonatelecom=http,post=post"})
        from sqlalchemy import select

        from gateway.config import Settings
        from gateway.crypto import keyring
        from gateway.db import engine_for, session_factory
        from gateway.directory import import_rows, read_rows
        from gateway.migrate import upgrade
        from gateway.models import Letter
        from gateway.pipeline import checking, outbox, submission
        from gateway.pipeline.intake import Mailbox, store_messages
        from gateway.providers.registry import open_provider
        from gateway.replies.intake import poll_provider

        settings = Settings()
        upgrade(url)
        sessions = session_factory(url)
        count_statements(engine_for(url))
        prisoners = directory(200)
        with sessions() as session:
            import_rows(session, read_rows(directory_csv(prisoners, root / "p.csv")))
            session.commit()
        Gateway.seed_writers(type("G", (), {"env": {"GATEWAY_SECRET_KEY": secret},
                                            "database_url": url})(),
                             [writer(i)[2] for i in range(WRITERS)])
        print(f"poll: {n} letters stored, checked and submitted (not timed)", flush=True)
        fetched = {uid: x.raw for uid, x in enumerate(letters(0, n, prisoners), start=1)}
        with sessions() as session:
            ids = store_messages(session, Mailbox("127.0.0.1", 1, "letters", "x"), 2, fetched,
                                 {}, keys=keyring(settings))
            session.commit()
        ready: list[int] = []
        for i in range(0, len(ids), 25):
            with sessions() as session:
                ready += checking.check_letters(session, ids[i:i + 25], settings).ready
                session.commit()
        provider = open_provider("http", settings)
        for i in range(0, len(ready), 25):
            submission.submit_many(sessions, provider, ready[i:i + 25], settings)
        with sessions() as session:
            numbers = list(session.scalars(select(Letter.provider_number).where(
                Letter.provider_number.is_not(None))))
        print(f"poll: the simulator scans {len(numbers)} one-page replies (not timed)", flush=True)
        for number in numbers:
            sim.request("POST", f"/_sim/letters/{number}/reply", json={"pages": 1})
        # The mail sent so far (the 'sent' notices) is not the replies' business.
        with sessions() as session:
            from gateway.models import OutboundMail
            sent_before = set(session.scalars(select(OutboundMail.id)))
        exclude = {sim.proc.pid}
        forwards: list[int] = []
        with timed("poll", len(numbers), out, "reply", exclude, profile):
            while True:
                got = poll_provider(sessions, provider, settings)
                forwards += got
                if not got:
                    break
        forwards = [i for i in forwards if i not in sent_before]
        print(f"            {len(forwards)} forwards queued of {len(numbers)} replies")
        with timed("forward", max(len(forwards), 1), out, "reply", exclude):
            for i in range(0, len(forwards), 25):
                outbox.send_pending(sessions, settings, forwards[i:i + 25])
        print(f"            {len(sink.arrivals.forwards)} replies at the sink", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replies")
    ap.add_argument("--n", type=int, default=100, help="replies through the poll path")
    ap.add_argument("--scans", type=int, default=40, help="scans of each kind re-encoded")
    ap.add_argument("--only", default="scan,poll")
    ap.add_argument("--profile", action="store_true", help="pyinstrument of the poll")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    out: dict = {}
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if "scan" in only:
        bench_scans(args.scans, out)
    if "poll" in only:
        bench_poll(args.n, out, Path(tempfile.mkdtemp(prefix="gw-replies-")), args.profile)
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
