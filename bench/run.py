"""`python -m bench`: the gateway beside a naive script and the hardware, on real servers.

See bench/README.md for what each part measures and how to read the figures."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from bench import directory_import, footprint, machine
from bench import overview as overview_part
from bench.letters import WRITERS, directory, directory_csv, letters, writer
from bench.stack import (
    USERS,
    CountingSink,
    Gateway,
    Simulator,
    deliver_maildir,
    prime_index,
    start_servers,
)
from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.postgres import throwaway_database

PARTS = ("raw", "naive", "throughput", "latency", "burst", "replies", "rss", "overview",
         "import", "postcards")
RESULTS = Path(__file__).resolve().parent / "results"
MOVING = ("RECEIVED", "READY", "SUBMITTING")  # states a worker still owes work on
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


def percentile(values, pct: float) -> float:
    return overview_part.percentile(values, pct)


# -- the parts -----------------------------------------------------------------------------

def raw_fetch(dovecot: DovecotServer, batch: int = 500) -> dict:
    """imapclient, batches of `batch` BODY.PEEK[]: what the hardware and Dovecot allow."""
    started = time.monotonic()
    got = size = 0
    with dovecot.client("raw") as imap:
        imap.select_folder("INBOX", readonly=True)
        uids = sorted(imap.search("ALL"))
        for i in range(0, len(uids), batch):
            for data in imap.fetch(uids[i:i + batch], [b"BODY.PEEK[]"]).values():
                got += 1
                size += len(data[b"BODY[]"])
    seconds = time.monotonic() - started
    return {"messages": got, "bytes": size, "seconds": seconds, "mps": got / seconds}


def naive(dovecot: DovecotServer, sim: Simulator, csv_path: Path, sampler,
          key_prefix: str) -> dict:
    meter = CpuMeter(sampler)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("naive_gateway.py")),
         "--imap-port", str(dovecot.port), "--user", "naive", "--password", USERS["naive"],
         "--provider", sim.url, "--token", "bench-token", "--directory", str(csv_path),
         "--key-prefix", key_prefix],
        stdout=subprocess.PIPE, text=True)
    sampler.watch("naive", proc.pid)
    out, _ = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"the naive gateway failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu_ms_per_letter"] = meter.per_letter_ms(result["letters"])
    with sampler._lock:
        sampler.roots.pop("naive", None)
    result["peak_rss_mb"] = sampler.peaks.role_rss.pop("naive", None)
    sampler.peaks.role_pss.pop("naive", None)
    return result


class CpuMeter:
    """CPU seconds each role used during a part, per letter."""

    def __init__(self, sampler: footprint.Sampler) -> None:
        self.sampler = sampler
        self.before = sampler.cpu()

    def per_letter_ms(self, letters: int) -> dict[str, float]:
        after = self.sampler.cpu()
        out = {role: (after[role] - self.before.get(role, 0.0)) * 1000 / max(letters, 1)
               for role in after}
        out["gateway"] = sum(v for k, v in out.items() if k in footprint.GATEWAY_ROLES)
        out["all"] = sum(v for k, v in out.items() if k != "gateway")
        return {k: round(v, 2) for k, v in out.items() if v > 0.005}


def say_cpu(cpu: dict[str, float], lps: float) -> None:
    """Where the machine's CPU went, a letter: every process the part used, the servers too.
    At `all` ms a letter N cores could carry at most N x 1000 / all letters/s; `busy` is the
    share of them the part kept busy."""
    roles = sorted(((k, v) for k, v in cpu.items() if k not in ("gateway", "all")),
                   key=lambda kv: -kv[1])
    whole = cpu.get("all", 0.0)
    cores = psutil.cpu_count() or 1
    say("  CPU ms a letter: " + ", ".join(f"{k} {v:.2f}" for k, v in roles)
        + f"; all {whole:.2f} (at most {cores * 1000 / whole:.0f} letters/s on {cores} cores;"
        f" busy {whole * lps / (cores * 10):.0f}%)" if whole else "")


def wait_settled(gw: Gateway, expected: int, what: str, stall_s: float = 120.0,
                 where: str = "") -> dict[str, int]:
    """Poll until `expected` letters (matching `where`) exist and none is still moving;
    give up after `stall_s` without progress. Prints progress."""
    last_key, last_change, last_print = None, time.monotonic(), 0.0
    cond = f"WHERE {where}" if where else ""
    while True:
        states = dict(gw.query(f"SELECT state, count(*) FROM letters {cond} GROUP BY state"))
        total = sum(states.values())
        moving = sum(states.get(s, 0) for s in MOVING)
        key = tuple(sorted(states.items()))
        now = time.monotonic()
        if key != last_key:
            last_key, last_change = key, now
        if now - last_print >= 5:
            say(f"  {what}: stored {total}/{expected}, submitted {states.get('SUBMITTED', 0)}, "
                f"moving {moving}, other "
                f"{ {k: v for k, v in states.items() if k not in (*MOVING, 'SUBMITTED')} }")
            last_print = now
        if total >= expected and moving == 0:
            return states
        if now - last_change > stall_s:
            say(f"  {what}: no progress for {stall_s:.0f}s, giving up: {states}")
            return states
        time.sleep(1.0)


def wait_notices(sink: CountingSink, expected: int, stall_s: float = 30.0) -> float | None:
    """Wait for the 'sent' notices to drain, so the next part starts on a quiet stack."""
    last, last_change = -1, time.monotonic()
    while True:
        with sink.arrivals.lock:
            count = len(sink.arrivals.notices)
            last_at = sink.arrivals.notices[-1] if count else None
        if count >= expected:
            return last_at
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            say(f"  notices: {count}/{expected} after a {stall_s:.0f}s stall; going on")
            return last_at
        time.sleep(0.5)


def submitted_times(gw: Gateway, where: str) -> list[datetime]:
    return [r[0] for r in gw.query(
        f"SELECT l.submitted_at FROM letters l JOIN inbound_messages m ON m.id = l.inbound_id "
        f"WHERE l.submitted_at IS NOT NULL AND {where}")]


def throughput(gw: Gateway, dovecot: DovecotServer, sink: CountingSink, raws: list[bytes],
               sampler, profile: Path | None, gil: bool = False) -> dict:
    deliver_maildir(dovecot, "letters", raws)
    assert prime_index(dovecot, "letters") == len(raws)
    spy = None
    if profile is not None:
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(gw.procs["worker"].pid),
                                "--subprocesses", "--rate", "50", "--format", "raw",
                                "--output", str(profile), *(["--gil"] if gil else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    say(f"throughput: {len(raws)} letters in the inbox; the clock starts at the first fetch")
    meter = CpuMeter(sampler)
    t0_wall, t0 = datetime.now(UTC), time.monotonic()
    gw.send_task("workers.tasks.fetch_inbox", "intake")
    sampler.watch("watch", gw.start("watch").pid)
    states = wait_settled(gw, len(raws), "throughput")
    # Also the CPU until every letter was submitted (wait_settled sees it within a second):
    # what the letters' own path cost, the notices that follow them left out.
    to_submitted, to_submitted_s = meter.per_letter_ms(len(raws)), time.monotonic() - t0
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    times = submitted_times(gw, "TRUE")
    if not times:
        raise RuntimeError(f"no letter was submitted: {gw.reasons()}")
    last = max(times)
    stored = gw.query("SELECT max(received_at) FROM inbound_messages")[0][0]
    seconds = (last - t0_wall).total_seconds()
    notices_at = wait_notices(sink, len(times))
    # The CPU is counted until the notices are out (their sending is the letters' work too,
    # and the worker sends them after the burst), so `busy` is taken over that window.
    cpu, cpu_s = meter.per_letter_ms(len(raws)), time.monotonic() - t0
    return {
        "cpu_ms_per_letter": cpu, "cpu_window_s": cpu_s,
        "cpu_ms_per_letter_to_submitted": to_submitted, "cpu_to_submitted_s": to_submitted_s,
        "letters": len(raws), "submitted": len(times), "states": states,
        "not_submitted": gw.reasons(),
        "seconds": seconds, "lps": len(times) / seconds,
        "all_stored_s": (stored - t0_wall).total_seconds(),
        "notices_sent": len(sink.arrivals.notices),
        "mail_duplicates": sink.arrivals.duplicates(),
        "notices_done_s": (notices_at - t0) if notices_at else None,
    }


def append_timed(dovecot: DovecotServer, raws: list[bytes], rate: float | None) -> list[tuple[int, datetime]]:
    """APPEND each message (at `rate` a second, or at once); (UID, wall time it landed)."""
    out = []
    with dovecot.client("letters") as imap:
        start = time.monotonic()
        for i, raw in enumerate(raws):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            response = imap.append("INBOX", raw)
            at = datetime.now(UTC)
            found = re.search(rb"APPENDUID (\d+) (\d+)", response)
            if not found:
                raise RuntimeError(f"no APPENDUID in {response!r}: Dovecot without UIDPLUS?")
            out.append((int(found[2]), at))
    return out


def per_letter_latency(gw: Gateway, appended: list[tuple[int, datetime]]) -> list[float]:
    uids = ",".join(str(uid) for uid, _ in appended)
    done = dict(gw.query(
        "SELECT m.uid, l.submitted_at FROM letters l JOIN inbound_messages m "
        f"ON m.id = l.inbound_id WHERE m.mailbox LIKE 'letters@%' AND m.uid IN ({uids}) "
        "AND l.submitted_at IS NOT NULL"))
    return [(done[uid] - at).total_seconds() for uid, at in appended if uid in done]


STAGES = ("RECEIVED", "READY", "SUBMITTING", "SUBMITTED")


def stage_medians(gw: Gateway, appended: list[tuple[int, datetime]]) -> dict[str, float]:
    """Median seconds between APPEND and each state's first event: where latency goes."""
    uids = ",".join(str(uid) for uid, _ in appended)
    rows = gw.query(
        "SELECT m.uid, e.to_state, min(e.at) FROM letter_events e JOIN letters l ON "
        "l.id = e.letter_id JOIN inbound_messages m ON m.id = l.inbound_id WHERE "
        f"m.mailbox LIKE 'letters@%' AND m.uid IN ({uids}) GROUP BY m.uid, e.to_state")
    at = {(uid, state): when for uid, state, when in rows}
    out: dict[str, float] = {}
    previous = "APPEND"
    for state in STAGES:
        gaps = []
        for uid, appended_at in appended:
            start = appended_at if previous == "APPEND" else at.get((uid, previous))
            end = at.get((uid, state))
            if start is not None and end is not None:
                gaps.append((end - start).total_seconds())
        if gaps:
            out[f"{previous}->{state}"] = round(statistics.median(gaps), 3)
        previous = state
    return out


def latency(gw: Gateway, dovecot: DovecotServer, raws: list[bytes], rate: float) -> dict:
    say(f"latency: {len(raws)} letters at {rate:g}/s ({len(raws) / rate:.0f} s)")
    appended = append_timed(dovecot, raws, rate)
    where = f"m.uid >= {appended[0][0]} AND m.mailbox LIKE 'letters@%'"
    wait_settled(gw, len(raws), "latency", stall_s=60,
                 where=f"inbound_id IN (SELECT id FROM inbound_messages m WHERE {where})")
    values = per_letter_latency(gw, appended)
    return {"letters": len(raws), "rate": rate, "submitted": len(values),
            "p50_s": statistics.median(values) if values else None,
            "p99_s": percentile(values, 99) if values else None,
            "max_s": max(values) if values else None,
            "stage_medians_s": stage_medians(gw, appended),
            "by_append_order_s": [round(v, 2) for v in values]}


def burst(gw: Gateway, dovecot: DovecotServer, raws: list[bytes]) -> dict:
    say(f"burst: {len(raws)} letters appended at once")
    t0_wall = datetime.now(UTC)
    appended = append_timed(dovecot, raws, None)
    append_s = (appended[-1][1] - t0_wall).total_seconds()
    where = f"m.uid >= {appended[0][0]} AND m.mailbox LIKE 'letters@%'"
    wait_settled(gw, len(raws), "burst", stall_s=60,
                 where=f"inbound_id IN (SELECT id FROM inbound_messages m WHERE {where})")
    times = submitted_times(gw, where)
    return {"letters": len(raws), "submitted": len(times), "append_s": append_s,
            "seconds": (max(times) - t0_wall).total_seconds() if times else None,
            "stage_medians_s": stage_medians(gw, appended)}


def replies(gw: Gateway, sim: Simulator, sink: CountingSink, count: int, sampler) -> dict:
    numbers = [r[0] for r in gw.query(
        "SELECT provider_number FROM letters WHERE state = 'SUBMITTED' ORDER BY id LIMIT :n",
        n=count)]
    gw.stop("beat")  # nobody polls while the scans are made (~0.3 s of CPU each)
    say(f"replies: the simulator scans {len(numbers)} replies (not timed)")
    made = time.monotonic()

    def make(number: str) -> None:
        r = sim.request("POST", f"/_sim/letters/{number}/reply",
                        json={"pages": 1, "by_email": False})
        r.raise_for_status()

    with ThreadPoolExecutor(2) as pool:
        for i, _ in enumerate(pool.map(make, numbers), 1):
            if i % 100 == 0:
                say(f"  {i}/{len(numbers)} replies made")
    made = time.monotonic() - made
    with sink.arrivals.lock:
        before = len(sink.arrivals.forwards)
    t0 = time.monotonic()
    gw.send_task("workers.tasks.poll_replies", "intake")  # the first poll: the clock starts
    sampler.watch("beat", gw.start("beat").pid)
    deadline, last_count, last_change = None, -1, time.monotonic()
    while True:
        with sink.arrivals.lock:
            got = sink.arrivals.forwards[before:]
        if len(got) >= len(numbers):
            break
        if len(got) != last_count:
            last_count, last_change = len(got), time.monotonic()
            say(f"  forwarded {len(got)}/{len(numbers)}")
        elif time.monotonic() - last_change > 120:
            say("  replies: no progress for 120 s, giving up")
            break
        time.sleep(0.5)
    del deadline
    seconds = (got[-1] - t0) if got else None
    return {"replies": len(numbers), "forwarded": len(got), "make_s": made,
            "mail_duplicates": sink.arrivals.duplicates(),
            "seconds": seconds, "rps": len(got) / seconds if seconds else None}


def use_web(gw: Gateway, requests: int = 20) -> dict:
    """Log in to the served dashboard and load the overview, so its memory is a used one's."""
    from gateway.db import session_factory
    from gateway.web.accounts import create_user

    with session_factory(gw.database_url)() as session:
        create_user(session, "bench", "bench-password", "admin")
        session.commit()
    gw.wait_web_ready()
    base = f"http://127.0.0.1:{gw.web_port}"
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
        r = client.post("/login", data={"username": "bench", "password": "bench-password",
                                        "csrf_token": token})
        if r.status_code != 302:
            raise RuntimeError(f"login to the served dashboard failed: {r.status_code}")
        for i in range(requests):
            t = time.perf_counter()
            client.get("/" if i % 2 else "/overview/live").raise_for_status()
            samples.append((time.perf_counter() - t) * 1000)
    return {"requests": requests, "p50_ms": statistics.median(samples),
            "p95_ms": percentile(samples, 95)}


# -- the run -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--n", type=int, default=10_000, help="letters for throughput (10000)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    ap.add_argument("--rate", type=float, default=5.0, help="offered load for latency, letters/s")
    ap.add_argument("--latency-s", type=float, default=60.0)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--replies", type=int, default=1000)
    ap.add_argument("--overview-rows", type=int, default=1_000_000)
    ap.add_argument("--import-rows", type=int, default=5000)
    ap.add_argument("--profile", nargs="?", const="cpu", choices=("cpu", "gil"),
                    help="py-spy the worker tree during throughput (raw stacks in results/); "
                         "'gil' samples only the thread holding each process's GIL: where "
                         "the CPU goes, without the threads waiting on sockets")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--worker-args", default="",
                    help='extra `gateway worker` options to compare, e.g. "--pool prefork"')
    args = ap.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 300)
        args.latency_s, args.burst, args.replies = 10.0, 100, 20
        args.overview_rows = min(args.overview_rows, 20_000)
        args.import_rows = min(args.import_rows, 500)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := skip - set(PARTS):
        ap.error(f"unknown parts {sorted(unknown)}; parts are {', '.join(PARTS)}")
    run = [p for p in PARTS if p not in skip]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    results: dict = {"started": stamp, "args": vars(args), "parts": run,
                     "load_before": machine.load()}
    say(f"bench: parts {', '.join(run)}; load average {results['load_before']}")

    root = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    sampler = footprint.Sampler().start()
    gateway_parts = {"throughput", "latency", "burst", "replies", "rss"} & set(run)
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, root, True)
        say("servers: Dovecot, Redis, PostgreSQL, the simulator, an SMTP sink")
        servers = start_servers(stack, root)
        dovecot, sim, sink = servers.dovecot, servers.simulator, servers.sink
        sampler.watch("simulator", sim.proc.pid)
        # The servers' CPU too: the ratio compares what the machine spends a letter.
        sampler.watch_cpu("postgres", footprint.backends_of(servers.database_url))
        sampler.watch_cpu("redis", servers.redis_pids)
        sampler.watch_cpu("dovecot", dovecot.pids)
        sampler.watch_cpu("bench", lambda: [os.getpid()])  # the SMTP sink, polling, sampling
        gw = Gateway(root, database_url=servers.database_url, redis_url=servers.redis_url,
                     dovecot=dovecot, sink=sink, simulator=sim)
        gw.on_start = lambda name, proc: sampler.watch(name, proc.pid)
        if args.worker_args:
            gw.COMMANDS = {**gw.COMMANDS,
                           "worker": [*gw.COMMANDS["worker"], *args.worker_args.split()]}
        stack.callback(gw.stop_all)
        results["machine"] = machine.describe(gw.query("SHOW server_version")[0][0])
        prisoners = directory(200)
        csv_path = directory_csv(prisoners, root / "prisoners.csv")
        gw.cli("db", "upgrade")
        gw.cli("prisoners", "import", str(csv_path))
        seeded = gw.seed_writers([writer(i)[2] for i in range(WRITERS)])
        say(f"{len(prisoners)} prisoners, {seeded} verified writers")

        batch: list[bytes] = []
        if {"raw", "naive", "throughput"} & set(run):
            say(f"generating {args.n} letters (deterministic, seed 8)")
            batch = [letter.raw for letter in letters(0, args.n, prisoners)]
            results["letters"] = {"n": args.n, "mean_bytes": sum(map(len, batch)) / len(batch)}

        if "raw" in run:
            deliver_maildir(dovecot, "raw", batch)
            prime_index(dovecot, "raw")
            say("raw fetch: imapclient, batches of 500")
            results["raw"] = raw_fetch(dovecot)
            say(f"  {results['raw']['mps']:.0f} messages/s")
        probe = batch[:200]  # the machine's speed between parts (machine.speed)
        speeds = results["machine_speed"] = {}

        def measure_speed(when: str) -> None:
            speeds[when] = round(machine.speed(probe), 1)
            say(f"  the machine's speed {when}: {speeds[when]:.0f} messages parsed a second")

        def run_naive(key: str, key_prefix: str) -> None:
            results[key] = found = naive(dovecot, sim, csv_path, sampler, key_prefix)
            say(f"  {found['lps']:.1f} letters/s "
                f"(posted {found['posted']}, refused {found['failed']})")
            say_cpu(found["cpu_ms_per_letter"], found["lps"])

        if "naive" in run:
            measure_speed("before naive")
            deliver_maildir(dovecot, "naive", batch)
            prime_index(dovecot, "naive")
            say("naive gateway: imaplib one at a time, parse, POST")
            run_naive("naive", "naive-")

        if gateway_parts:
            say("gateway: worker, beat and web in the default configuration")
            gw.start("worker")
            gw.start("beat")
            gw.start("web")
            gw.wait_worker_ready()
            gw.wait_web_ready()
            time.sleep(2)  # let beat's first due tasks run on an empty inbox
        if "throughput" in run:
            measure_speed("before throughput")
            profile = RESULTS / f"{stamp}-worker.pyspy.txt" if args.profile else None
            results["throughput"] = throughput(gw, dovecot, sink, batch, sampler, profile,
                                               gil=args.profile == "gil")
            t = results["throughput"]
            say(f"  {t['submitted']} submitted in {t['seconds']:.1f}s: {t['lps']:.1f} letters/s")
            if t["notices_done_s"]:
                say(f"  the writers' {t['notices_sent']} notices all sent at "
                    f"{t['notices_done_s']:.1f}s ({t['notices_done_s'] - t['seconds']:.1f}s after "
                    "the last submission: the worker serves the mail queue last)")
            say_cpu(t["cpu_ms_per_letter"], t["letters"] / t["cpu_window_s"])
            say("  of it until the last submission:")
            say_cpu(t["cpu_ms_per_letter_to_submitted"], t["letters"] / t["cpu_to_submitted_s"])
            measure_speed("after throughput")
            if drift := speed_drift(speeds):
                say(f"  the machine's speed moved {drift:.0%} across the naive and "
                    "throughput parts: their ratio is as uncertain")
            if "naive" in run:
                # Again, on the same letters, the gateway idle beside it: the ratio takes
                # the naive rate before and after, so a machine that drifts steadily
                # through the run is cancelled out rather than counted for or against.
                say(f"  the stack settles: {gw.quiesce():.0f}s until no task is queued")
                say("naive gateway again, after the throughput part")
                run_naive("naive_after", "naive-again-")
                before, after = results["naive"]["lps"], results["naive_after"]["lps"]
                say(f"  ratio to the naive runs' mean {t['lps'] / naive_rate(results):.2f} "
                    f"(to the one before {t['lps'] / before:.2f}, after {t['lps'] / after:.2f})")
                # worker_cpu_ms moves with this machine's speed (1.5x between sessions);
                # against the naive script's own CPU in the same run, it moves much less.
                own = [results[k]["cpu_ms_per_letter"].get("naive") for k in ("naive", "naive_after")]
                worker = t["cpu_ms_per_letter"].get("worker")
                if worker and all(own):
                    naive_ms = sum(own) / len(own)
                    t["worker_cpu_x_naive"] = round(worker / naive_ms, 2)
                    say(f"  the worker's CPU a letter is {t['worker_cpu_x_naive']:.2f}x the naive "
                        f"script's own ({worker:.2f} ms against {naive_ms:.2f})")
        elif gateway_parts:
            sampler.watch("watch", gw.start("watch").pid)
            time.sleep(3)
        start = args.n
        if "latency" in run:
            say(f"  the stack settles: {gw.quiesce():.0f}s until no task is queued")
            count = int(args.rate * args.latency_s)
            raws = [x.raw for x in letters(start, count, prisoners)]
            start += count
            results["latency"] = latency(gw, dovecot, raws, args.rate)
            say(f"  p50 {results['latency']['p50_s']:.2f}s, p99 {results['latency']['p99_s']:.2f}s")
        if "burst" in run:
            say(f"  the stack settles: {gw.quiesce():.0f}s until no task is queued")
            raws = [x.raw for x in letters(start, args.burst, prisoners)]
            start += args.burst
            results["burst"] = burst(gw, dovecot, raws)
            say(f"  all {results['burst']['submitted']} submitted after "
                f"{results['burst']['seconds']:.1f}s")
        if "replies" in run:
            say(f"  the stack settles: {gw.quiesce():.0f}s until no task is queued")
            results["replies"] = replies(gw, sim, sink, args.replies, sampler)
            r = results["replies"]
            say(f"  {r['forwarded']} forwarded in {r['seconds'] or 0:.1f}s")
        if gateway_parts:
            results["web_served"] = use_web(gw)
            time.sleep(1)
            sampler.sample()
        peaks = sampler.stop()
        results["rss"] = asdict(peaks)
        gw.stop_all()
        if "overview" in run:
            say(f"overview: {args.overview_rows:,} letters made in SQL")
            with throwaway_database() as url:
                from gateway.migrate import upgrade
                upgrade(url)
                took = overview_part.populate(url, args.overview_rows, log=say)
                ids = overview_part.add_campaign(url, args.overview_rows, log=say)
                timings = overview_part.measure(url, log=say,
                                                extra_paths=overview_part.campaign_paths(*ids))
            results["overview"] = {"rows": args.overview_rows, "populate_s": took,
                                   "timings": [{"path": t.path, "cached": t.cached,
                                                "p50_ms": t.p50, "p95_ms": t.p95}
                                               for t in timings]}
        if "import" in run:
            say(f"directory import: {args.import_rows:,} rows, then next month's list")
            with throwaway_database() as url:
                results["import"] = directory_import.measure(args.import_rows, database_url=url)
            say(f"  imported in {results['import']['import_s']:.1f}s, "
                f"re-imported in {results['import']['replan_s'] + results['import']['reapply_s']:.1f}s")
    if "postcards" in run:
        from bench import postcards as postcards_part
        n = 300 if args.quick else 1000
        say(f"postcards: {n:,} greetings of an evening gathered into postcards")
        results["postcards"] = postcards_part.run(n)
    results["load_after"] = machine.load()
    line = summary(results)
    results["summary"] = line
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    say(f"figures kept in {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    print(line, flush=True)
    return 0


def speed_drift(speeds: dict[str, float]) -> float | None:
    """(fastest - slowest) / slowest of the machine's speeds taken around the naive and
    throughput parts; None below 10%, which is within a quiet machine's own spread."""
    values = [v for v in speeds.values() if v > 0]
    if len(values) < 2:
        return None
    drift = (max(values) - min(values)) / min(values)
    return drift if drift >= 0.10 else None


def naive_rate(r: dict) -> float | None:
    """The naive script's letters/s: the mean of its runs before and after the gateway's
    throughput part when both ran (runs 1-17 had only the one before)."""
    rates = [r[k]["lps"] for k in ("naive", "naive_after") if r.get(k, {}).get("lps")]
    return sum(rates) / len(rates) if rates else None


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary(r: dict) -> str:
    t = r.get("throughput", {}).get("lps")
    naive_lps = naive_rate(r)
    raw = r.get("raw", {}).get("mps")
    lat = r.get("latency", {})
    ov = r.get("overview", {}).get("timings", [])
    # Every page as every refresh sees it: the settled counts from the once-a-minute cache
    # (stale-while-revalidate: a request never waits for them once the process has them),
    # everything else read fresh. The cold figures (settled recounted) stay in the JSON.
    overview_p95 = max((x["p95_ms"] for x in ov if x["cached"]), default=None)
    rss = r.get("rss", {}).get("total_rss") or None
    pss = r.get("rss", {}).get("total_pss") or None
    worker_cpu = r.get("throughput", {}).get("cpu_ms_per_letter", {}).get("worker")
    cards = r.get("postcards") or {}
    return " ".join([
        f"throughput_lps={_fmt(t)}",
        f"ratio_vs_naive={_fmt(t / naive_lps if t and naive_lps else None, 2)}",
        f"ratio_vs_raw_fetch={_fmt(t / raw if t and raw else None, 3)}",
        f"p50_s={_fmt(lat.get('p50_s'), 2)}",
        f"p99_s={_fmt(lat.get('p99_s'), 2)}",
        f"burst_1000_s={_fmt(r.get('burst', {}).get('seconds'))}",
        f"replies_lps={_fmt(r.get('replies', {}).get('rps'))}",
        f"stack_rss_mb={_fmt(rss, 0)}",
        f"overview_p95_ms={_fmt(overview_p95)}",
        f"stack_pss_mb={_fmt(pss, 0)}",
        f"worker_cpu_ms={_fmt(worker_cpu)}",
        f"postcards_rub_saved={_fmt(cards.get('saved_rub'), 2)}",
        f"postcards_1000_s={_fmt(cards.get('seconds'), 2)}",
        f"import_5000_s={_fmt(r.get('import', {}).get('import_s'), 2)}",
    ])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
