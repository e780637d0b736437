"""The benchmark's servers and the gateway's own processes, as tests/e2e/stack.py runs them,
with three differences that keep the measurement honest:

- the simulator runs in its own process (in a thread of the benchmark it would share a GIL
  with the driver and the SMTP sink, and slow both sides);
- the SMTP sink only counts what arrives (reads headers, keeps no parsed copies);
- the gateway runs in its default configuration (`gateway worker|beat|imap-watch|web`,
  no shortened intervals): only addresses, ports and secrets are set."""

from __future__ import annotations

import email.parser
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.ports import free_port, wait_for_port

TOKEN = "bench-token"
REPLY_SUBJECT = "A reply to your letter"
USERS = {"letters": "secret", "replies": "secret", "naive": "secret", "raw": "secret"}


# -- the SMTP sink -------------------------------------------------------------------------

@dataclass
class Arrivals:
    """When each kind of mail reached the sink (monotonic seconds)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    notices: list[float] = field(default_factory=list)
    forwards: list[float] = field(default_factory=list)
    message_ids: Counter = field(default_factory=Counter)

    def duplicates(self) -> int:
        """Messages that arrived more than once (the same Message-ID): a writer mailed twice."""
        with self.lock:
            return sum(n - 1 for n in self.message_ids.values() if n > 1)


class CountingSink:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals = Arrivals()
        self._parser = email.parser.BytesHeaderParser(policy=email.policy.default)
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        headers = self._parser.parsebytes(envelope.content)
        subject = str(headers.get("Subject", ""))
        now = time.monotonic()
        with self.arrivals.lock:
            (self.arrivals.forwards if REPLY_SUBJECT in subject else self.arrivals.notices).append(now)
            self.arrivals.message_ids[str(headers.get("Message-ID", "")).strip()] += 1
        return "250 OK"

    def start(self) -> CountingSink:
        self._controller = Controller(self, hostname=self.host, port=self.port,
                                      enable_SMTPUTF8=True, decode_data=False)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- Maildir delivery ----------------------------------------------------------------------

def deliver_maildir(dovecot: DovecotServer, user: str, raws: list[bytes]) -> None:
    """Drop messages straight into the user's Maildir `new/`, as a local delivery agent would;
    much faster than APPEND for loading thousands. Dovecot indexes them on the next SELECT."""
    maildir = dovecot.data_dir / "mail" / user / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for i, raw in enumerate(raws):
        tmp = maildir / "tmp" / f"{stamp}.M{i}P{os.getpid()}.bench"
        tmp.write_bytes(raw)
        tmp.rename(maildir / "new" / tmp.name)
    if os.geteuid() == 0:  # Dovecot's mail processes run as nobody (see devstack.dovecot)
        for path in [dovecot.data_dir / "mail" / user, *(dovecot.data_dir / "mail" / user).rglob("*")]:
            shutil.chown(path, "nobody", "nogroup")


def prime_index(dovecot: DovecotServer, user: str) -> int:
    """SELECT once so Dovecot indexes dropped files before any clock starts (an LDA would
    have indexed them on delivery). Returns the message count."""
    with dovecot.client(user) as imap:
        return int(imap.select_folder("INBOX", readonly=True)[b"EXISTS"])


# -- the simulator -------------------------------------------------------------------------

class Simulator:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Simulator:
        log = open(self.root / "simulator.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.simulator", "--port", str(self.port),
             "--state", str(self.root / "simulator.db"), "--token", TOKEN],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGTERM)
            self.proc = None

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=60,
                             headers={"Authorization": f"Bearer {TOKEN}"}, **kw)


@dataclass
class Servers:
    dovecot: DovecotServer
    redis_url: str
    database_url: str
    simulator: Simulator
    sink: CountingSink
    redis_pids: Callable[[], list[int]]


def start_servers(stack: ExitStack, root: Path) -> Servers:
    """Dovecot, Redis, a throwaway PostgreSQL database, the simulator (its balance topped up
    so no run ends in a 402) and a counting SMTP sink, each stopped by `stack`."""
    from gateway.devstack.postgres import throwaway_database
    from gateway.devstack.redis_server import RedisServer

    dovecot = DovecotServer(root / "dovecot", users=USERS).start()
    stack.callback(dovecot.stop)
    redis_server = RedisServer().start()
    stack.callback(redis_server.stop)
    database_url = stack.enter_context(throwaway_database())
    simulator = Simulator(root).start()
    stack.callback(simulator.stop)
    simulator.request("POST", "/_sim/balance",
                      json={"amount": "100000000.00"}).raise_for_status()
    sink = CountingSink().start()
    stack.callback(sink.stop)
    return Servers(dovecot, redis_server.url, database_url, simulator, sink, redis_server.pids)


def _stop_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- the gateway ---------------------------------------------------------------------------

class Gateway:
    """The gateway's processes, each in its own session (so a stop takes its children)."""

    COMMANDS = {
        "worker": ["-m", "gateway.cli", "worker"],
        "beat": ["-m", "gateway.cli", "beat", "--schedule", "{root}/beat-schedule"],
        "watch": ["-m", "gateway.cli", "imap-watch"],
        "web": ["-m", "gateway.cli", "web", "--port", "{web_port}"],
    }

    def __init__(self, root: Path, *, database_url: str, redis_url: str, dovecot: DovecotServer,
                 sink: CountingSink, simulator: Simulator) -> None:
        self.root = root
        self.database_url = database_url
        self.web_port = free_port()
        self.env = {**os.environ,
                    "GATEWAY_DATABASE_URL": database_url,
                    "GATEWAY_BROKER_URL": redis_url,
                    "GATEWAY_SECRET_KEY": "bench-secret-0123456789abcdef0123456789",
                    "GATEWAY_IMAP_HOST": dovecot.host, "GATEWAY_IMAP_PORT": str(dovecot.port),
                    "GATEWAY_SMTP_HOST": sink.host, "GATEWAY_SMTP_PORT": str(sink.port),
                    "GATEWAY_PROVIDER_URL": simulator.url, "GATEWAY_PROVIDER_TOKEN": TOKEN,
                    "GATEWAY_WEB_PORT": str(self.web_port),
                    "PYTHONUNBUFFERED": "1"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.engine = create_engine(database_url, pool_size=2)
        self.on_start: Callable[[str, subprocess.Popen], None] = lambda name, proc: None

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"gateway {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def seed_writers(self, addresses: list[str]) -> int:
        """Make the writers known and verified, as returning writers of a campaign are (the
        first-letter confirmation is its own flow, not measured here). Returns rows added;
        0 when this version of the gateway has no senders table."""
        try:
            from gateway.models import Sender
        except ImportError:
            return 0
        from gateway.crypto import address_hash
        from gateway.db import session_factory
        from gateway.models import utcnow

        secret = self.env["GATEWAY_SECRET_KEY"]
        with session_factory(self.database_url)() as session:
            session.add_all(Sender(address_hash=address_hash(secret, a), verified_at=utcnow())
                            for a in addresses)
            session.commit()
        return len(addresses)

    def reasons(self) -> list[tuple[str, str, int]]:
        """Why letters that were not submitted stopped where they did."""
        return self.query(
            "SELECT state, left(coalesce(reason, ''), 120) AS why, count(*) FROM letters "
            "WHERE state <> 'SUBMITTED' GROUP BY state, why ORDER BY count(*) DESC LIMIT 20")

    def start(self, name: str) -> subprocess.Popen:
        argv = [a.format(root=self.root, web_port=self.web_port) for a in self.COMMANDS[name]]
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, *argv], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        self.on_start(name, proc)
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            _stop_group(proc, signal.SIGTERM)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        self.engine.dispose()

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_worker_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log("worker"):
                return
            time.sleep(0.1)
        raise TimeoutError("the Celery worker did not get ready:\n" + self.log("worker")[-3000:])

    def wait_web_ready(self, timeout: float = 60) -> None:
        wait_for_port("127.0.0.1", self.web_port, timeout=timeout)

    def query(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def states(self) -> dict[str, int]:
        return dict(self.query("SELECT state, count(*) FROM letters GROUP BY state"))

    def queued(self) -> int:
        """Tasks waiting in the broker's queues (kombu keeps one Redis list a queue, plus
        one a priority step)."""
        import redis

        client = redis.Redis.from_url(self.env["GATEWAY_BROKER_URL"])
        try:
            return sum(client.llen(key) for key in client.scan_iter(count=1000)
                       if key.split(b"\x06")[0] in (b"letters", b"intake", b"mail")
                       and client.type(key) == b"list")
        finally:
            client.close()

    def quiesce(self, quiet_s: float = 3.0, timeout: float = 300.0) -> float:
        """Wait until no task has been queued for `quiet_s`, so one part's leftovers do not
        land in the next part's figures. Returns the seconds waited."""
        started = time.monotonic()
        quiet_since = None
        while time.monotonic() - started < timeout:
            if self.queued() == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= quiet_s:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        return time.monotonic() - started

    def send_task(self, name: str, queue: str) -> None:
        """Start a task as beat or the watcher would: through the broker."""
        from celery import Celery

        app = Celery("bench", broker=self.env["GATEWAY_BROKER_URL"])
        try:
            app.send_task(name, queue=queue)
        finally:
            app.close()
