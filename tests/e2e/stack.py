"""The whole gateway as separate real processes, for end-to-end tests: a Celery worker,
beat and the inbox watcher, against the session's Dovecot and Redis, an SMTP sink that
delivers the gateway's own addresses into Dovecot, and the simulator over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.smtp import SmtpSink
from gateway.directory import DEMO_CSV
from gateway.simulator.server import SimulatorServer
from workers.queues import QUEUES

GATEWAY = "letters@gateway.local"
REPLIES = "replies@gateway.local"
TOKEN = "test-token"


def letter(subject: str, body: str, sender: str = "Анна Смирнова <anna@example.org>",
           **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = GATEWAY
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


WARM = """Здравствуйте, Мария!

Пишу вам из Петербурга. У нас выпал первый снег, и город стал тихим и светлым. Вечерами
я читаю книги и вспоминаю, как мы гуляли по набережной летом. Мы все помним о вас и ждём.
Берегите себя и пишите, что вы сейчас читаете.

Обнимаю,
Анна"""


class Stack:
    def __init__(self, root: Path, dovecot: DovecotServer, redis_url: str, database_url: str,
                 extra_env: dict[str, str] | None = None):
        self.root = root
        self.dovecot = dovecot
        self.database_url = database_url
        self.sink = SmtpSink(deliver={GATEWAY: (dovecot, "letters"),
                                      REPLIES: (dovecot, "replies")})
        self.simulator = SimulatorServer(str(root / "simulator.db"), token=TOKEN)
        self.redis_url = redis_url
        self.extra_env = extra_env or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.engine = create_engine(database_url)
        self.restarts: list[tuple[str, int]] = []  # (process, exit code) restarted by supervise()
        self._procs_lock = threading.Lock()
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------
    def start(self, *, processes: tuple[str, ...] = ("worker", "beat", "watch")) -> Stack:
        self.sink.start()
        self.simulator.smtp_host, self.simulator.smtp_port = "127.0.0.1", self.sink.port
        self.simulator.start()
        self.env = dict(os.environ)
        self.env.update({
            "GATEWAY_DATABASE_URL": self.database_url,
            "GATEWAY_BROKER_URL": self.redis_url,
            "GATEWAY_SECRET_KEY": "e2e-secret-0123456789abcdef0123456789",
            "GATEWAY_IMAP_HOST": self.dovecot.host, "GATEWAY_IMAP_PORT": str(self.dovecot.port),
            "GATEWAY_SMTP_HOST": "127.0.0.1", "GATEWAY_SMTP_PORT": str(self.sink.port),
            "GATEWAY_PROVIDER_URL": self.simulator.url, "GATEWAY_PROVIDER_TOKEN": TOKEN,
            "GATEWAY_PROVIDER_TIMEOUT": "5",
            "GATEWAY_SWEEP_INTERVAL_S": "1", "GATEWAY_STUCK_AFTER_S": "3",
            "GATEWAY_REPLY_POLL_S": "1", "GATEWAY_STATUS_POLL_S": "2",
            # Writers confirming their address is tested in tests/intake; here letters go on.
            "GATEWAY_CONFIRM_SENDERS": "false",
            "PYTHONUNBUFFERED": "1",
        })
        self.env.update(self.extra_env)
        self.gateway("db", "upgrade")
        self.gateway("prisoners", "import", str(DEMO_CSV))
        for name in processes:
            self.start_process(name)
        return self

    def gateway(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    COMMANDS = {
        "worker": ["-m", "celery", "-A", "workers.celery_app", "worker", "-Q",
                   ",".join(QUEUES), "-c", "2", "--without-gossip", "--without-mingle",
                   "-l", "INFO"],
        "beat": ["-m", "gateway.cli", "beat", "--schedule", "{root}/beat-schedule"],
        "watch": ["-m", "gateway.cli", "imap-watch"],
    }

    def start_process(self, name: str, env: dict[str, str] | None = None) -> None:
        argv = [a.format(root=self.root) for a in self.COMMANDS[name]]
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, *argv], env={**self.env, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with self._procs_lock:
            self.procs[name] = proc

    def supervise(self, *names: str) -> None:
        """Restart these processes when they exit on their own, as production's restart
        policy does (docker-compose `restart: unless-stopped`); each restart is recorded in
        `restarts` so a test can report it. Processes stopped through kill() are not
        restarted."""
        def watch() -> None:
            while not self._stopping.wait(0.5):
                with self._procs_lock:
                    dead = [(n, p.returncode) for n, p in self.procs.items()
                            if n in names and p.poll() is not None]
                for name, code in dead:
                    self.restarts.append((name, code))
                    self.start_process(name)
        threading.Thread(target=watch, name="stack-supervisor", daemon=True).start()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        with self._procs_lock:
            proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        self._stopping.set()
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM if name != "worker" else signal.SIGKILL)
        self.simulator.stop()
        self.sink.stop()
        self.engine.dispose()

    def log(self, name: str, tail: int | None = 4000) -> str:
        """The end of a process's log (for failure messages), or all of it with tail=None."""
        path = self.root / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    # -- acting ------------------------------------------------------------------
    def send(self, raw: bytes) -> None:
        self.dovecot.append("letters", raw)

    def send_tasks(self, *calls: tuple[str, tuple]) -> None:
        """Queue (task name, args) in order, by name through the slim app, as beat and the
        watcher do, in this stack's environment (its broker)."""
        code = "from workers.sender import send\n" + "".join(
            f"send({name!r}, *{tuple(args)!r})\n" for name, args in calls)
        done = subprocess.run([sys.executable, "-c", code], env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def sim(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.simulator.url + path, timeout=10,
                             headers={"Authorization": f"Bearer {TOKEN}"}, **kw)

    def sim_letters(self) -> list[dict]:
        body = self.sim("GET", "/_sim/letters").json()
        return body["letters"] if isinstance(body, dict) else body

    # -- looking -----------------------------------------------------------------
    def query(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]

    def letters(self) -> list[dict]:
        return self.query("SELECT id, state, provider_number, reason, attempts FROM letters "
                          "ORDER BY id")

    def wait(self, what: str, predicate: Callable[[], object], timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what}\nletters: {json.dumps(self.letters(), default=str)}"
            f"\n--- worker log ---\n{self.log('worker')}\n--- watch log ---\n{self.log('watch')}")

    def mail_to(self, address: str) -> list:
        return [m for m in self.sink.messages if address in [r.lower() for r in m.rcpt_tos]]
