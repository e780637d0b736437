"""The soak: the whole gateway on real local servers for N minutes (default 30), a steady
stream of letters and replies, and a random fault every 20 seconds; then the same
invariants as the chaos suite, and the same one-line verdict.

    .venv/bin/python -m bench.soak --minutes 30

Not part of CI. See bench/SOAK.md for what it does and how to read the result.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.redis_server import RedisServer
from tests.chaos.invariants import check
from tests.chaos.stack import UNKNOWN_RECIPIENT, ChaosStack

UNSETTLED = ("RECEIVED", "SUBMITTING", "READY", "UNKNOWN")


@dataclass(frozen=True)
class Fault:
    name: str
    apply: Callable[[ChaosStack], None]
    restore: Callable[[ChaosStack], None] | None = None
    lasts_s: float = 0.0


def _restart_worker(stack: ChaosStack) -> None:
    stack.start_process("worker")


def _refuse_next_mail(stack: ChaosStack) -> None:
    left = {"n": 2}

    def refuse(_rcpt: str) -> str | None:
        if left["n"] > 0:
            left["n"] -= 1
            return "451 4.3.0 try again later"
        return None
    stack.sink.fail_codes = refuse


def _link(mode: str, delay_s: float = 0.0) -> Callable[[ChaosStack], None]:
    def apply(stack: ChaosStack) -> None:
        stack.proxies[random.choice(stack.LINKS)].set(mode, delay_s)
    return apply


def _all_links_pass(stack: ChaosStack) -> None:
    for link in stack.proxies:
        stack.proxies[link].set("pass")


def _provider(plan: dict) -> Callable[[ChaosStack], None]:
    def apply(stack: ChaosStack) -> None:
        stack.sim("POST", "/_sim/faults", json={**plan, "method": "POST"})
    return apply


def _provider_clear(stack: ChaosStack) -> None:
    stack.sim("POST", "/_sim/faults", json={})


def _pause_dovecot(stack: ChaosStack) -> None:
    stack.dovecot.pause()


FAULTS = [
    Fault("kill -9 worker child", lambda s: s.kill_worker_child() if s.worker_children() else None),
    Fault("kill -9 worker parent", lambda s: s.kill_worker_parent(), _restart_worker, 3),
    Fault("redis restarted empty", lambda s: s.restart_redis_empty()),
    Fault("link reset", _link("reset"), _all_links_pass, 2),
    Fault("link blackholed", _link("blackhole"), _all_links_pass, 6),
    Fault("link slow", _link("delay", 0.5), _all_links_pass, 8),
    Fault("provider 503", _provider({"error_rate": 1, "status": 503, "count": 2}),
          _provider_clear, 10),
    Fault("provider 429", _provider({"error_rate": 1, "status": 429, "count": 2}),
          _provider_clear, 10),
    Fault("provider accepts then resets", _provider(
        {"error_rate": 1, "status": "reset", "mode": "after", "count": 1}), _provider_clear, 10),
    Fault("provider accepts then 500", _provider(
        {"error_rate": 1, "status": 500, "mode": "after", "count": 1}), _provider_clear, 10),
    Fault("provider slow past the timeout", _provider({"latency_ms": 4000, "mode": "after"}),
          _provider_clear, 8),
    Fault("dovecot SIGSTOP", _pause_dovecot, lambda s: s.dovecot.resume(), 5),
    Fault("smtp 451", _refuse_next_mail, lambda s: setattr(s.sink, "fail_codes", None), 15),
]


def settled(stack: ChaosStack) -> bool:
    states = Counter(r["state"] for r in stack.letters())
    pending = stack.query("SELECT id FROM outbound_mail WHERE state = 'PENDING'")
    replies = stack.query("SELECT id FROM replies WHERE state IN ('RECEIVED', 'MATCHED')")
    return not any(states[s] for s in UNSETTLED) and not pending and not replies and \
        not stack.dovecot.messages("letters")


def run(minutes: float, fault_every: float, letter_every: float, seed: int,
        database_url: str | None, keep: bool) -> int:
    random.seed(seed)
    root = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    dovecot = DovecotServer(root / "dovecot").start()
    redis_server = RedisServer().start()
    stack = ChaosStack(root, dovecot, redis_server, database_url or f"sqlite:///{root}/gw.db",
                       proxied=ChaosStack.LINKS,
                       extra_env={"GATEWAY_SMTP_TIMEOUT": "3", "GATEWAY_PROVIDER_TIMEOUT": "3"})
    stack.allow_resent_mail = True  # SMTP stalls and kills during a send make re-sends legitimate
    print(f"soak: {minutes:g} min, a fault every {fault_every:g} s, a letter every "
          f"{letter_every:g} s, seed {seed}, state in {root}", flush=True)
    counts: Counter[str] = Counter()
    try:
        stack.start()
        # As production's restart policy does: the worker can exit when Redis comes back
        # empty (kombu; docs/reliability.md). Restarts are reported at the end.
        stack.supervise("worker")
        started = time.monotonic()
        end = started + minutes * 60
        next_letter = next_fault = next_reply = started + 2
        restore: tuple[float, Fault] | None = None
        replied: set[str] = set()
        i = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if restore and now >= restore[0]:
                restore[1].restore(stack)
                restore = None
            if now >= next_letter and not (restore and restore[1].name == "dovecot SIGSTOP"):
                stack.post(i, recipient=UNKNOWN_RECIPIENT if i % 10 == 9 else None)
                i += 1
                next_letter = now + letter_every
            if now >= next_fault and restore is None:
                fault = random.choice(FAULTS)
                before = len(stack.faults)
                fault.apply(stack)
                if len(stack.faults) == before:  # kills and restarts count themselves
                    stack.fault(fault.name)
                counts[fault.name] += 1
                print(f"  {now - started:6.0f}s  {fault.name}", flush=True)
                if fault.restore:
                    restore = (now + fault.lasts_s, fault)
                next_fault = now + fault_every
            if now >= next_reply and restore is None:  # prisoners answer what reached them
                for row in stack.letters():
                    number = row["provider_number"]
                    if row["state"] == "SUBMITTED" and number not in replied:
                        if stack.sim("POST", f"/_sim/letters/{number}/reply",
                                     json={"pages": 1, "by_email": True}).status_code == 201:
                            replied.add(number)
                next_reply = now + 30
            time.sleep(0.2)
        if restore:
            restore[1].restore(stack)
        _provider_clear(stack)
        if "worker" not in stack.procs:
            _restart_worker(stack)
        print(f"soak: {i} letters, {len(stack.faults)} faults, worker restarted after it "
              f"exited: {len(stack.restarts)}; settling", flush=True)
        deadline = time.monotonic() + 600  # generous: a killed ingest's lock alone lasts 30 s
        while time.monotonic() < deadline and not settled(stack):
            time.sleep(2)
        report = check(stack, record=False)
        states = Counter(r["state"] for r in stack.letters())
        print(f"soak: letters {dict(states)}; replies {len(replied)}; re-sent mails "
              f"{report.resent}; settled after {time.monotonic() - started:.0f} s")
        for problem in report.problems:
            print(f"soak: PROBLEM {problem}")
        print(report.tally.line(), flush=True)
        return 0 if report.ok else 1
    finally:
        stack.stop()
        redis_server.cleanup()
        dovecot.stop()
        if keep:
            print(f"soak: state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--fault-every", type=float, default=20, help="seconds")
    parser.add_argument("--letter-every", type=float, default=5, help="seconds")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--database-url", help="default: a SQLite file in the state directory")
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run(args.minutes, args.fault_every, args.letter_every, args.seed, args.database_url,
               args.keep)


if __name__ == "__main__":
    sys.exit(main())
