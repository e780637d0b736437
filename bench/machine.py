"""What the figures were measured on: they mean little without it."""

from __future__ import annotations

import email
import gc
import os
import platform
import re
import subprocess
import time
from email import policy
from importlib import metadata
from pathlib import Path

import psutil


def _out(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found[1].strip() if found else "?"


def describe(pg_version: str | None = None) -> dict:
    from gateway.devstack.dovecot import dovecot_binary
    from gateway.devstack.redis_server import redis_binary

    versions = {name: metadata.version(name) for name in (
        "celery", "redis", "sqlalchemy", "psycopg", "imapclient", "httpx", "flask", "kombu")}
    repo = Path(__file__).resolve().parent.parent
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": round(psutil.virtual_memory().total / 2**20),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dovecot": _out(dovecot_binary(), "--version"),
        "redis": _out(redis_binary(), "--version"),
        "postgresql": pg_version or "?",
        "packages": versions,
        "git": _out("git", "-C", str(repo), "rev-parse", "--short", "HEAD"),
        "git_dirty": _out("git", "-C", str(repo), "status", "--porcelain") not in ("", "?"),
    }


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def speed(samples: list[bytes], seconds: float = 1.0) -> float:
    """How fast this machine runs Python like the gateway's right now: messages of the run
    parsed a second of this thread's CPU (`policy.default`; the benchmark's sampler thread
    does not count), once the machine is idle.
    Taken before and after the naive and throughput parts: a cloud machine's speed drifts
    (2.5x between sessions here, ±20% within one), and their ratio is only a figure of the
    code when the machine ran both at the same speed."""
    if not samples:
        return 0.0
    _wait_idle()  # another process on the same core slows the probe, not the machine
    # Without the collector: its passes over everything the benchmark holds by then would
    # make the same parse slower later in the run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        parsed, started = 0, time.thread_time()
        while (elapsed := time.thread_time() - started) < seconds:
            email.message_from_bytes(samples[parsed % len(samples)], policy=policy.default)
            parsed += 1
    finally:
        if collecting:
            gc.enable()
    return parsed / elapsed


def _wait_idle(busy_pct: float = 15.0, limit_s: float = 20.0) -> None:
    """Until the machine is under `busy_pct` busy for half a second (a part's processes
    still finishing, a server warming up), for at most `limit_s`."""
    deadline = time.monotonic() + limit_s
    while psutil.cpu_percent(interval=0.5) > busy_pct and time.monotonic() < deadline:
        pass
