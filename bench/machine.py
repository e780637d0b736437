"""What the figures were measured on: they mean little without it."""

from __future__ import annotations

import os
import platform
import re
import subprocess
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
