"""The e2e stack, made to misbehave: proxies in front of its links, a second beat and
watcher, worker children and parents to kill, an SMTP sink that stalls after DATA, and a
record of every letter sent and every fault injected, for the invariants."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.proxy import TcpProxy
from gateway.devstack.redis_server import RedisServer
from gateway.devstack.smtp import _Handler
from tests.e2e.stack import Stack, letter

# Prisoners of gateway/demo/prisoners.csv, named as writers do in the Subject.
RECIPIENTS = ("Иванову Ивану Ивановичу", "Петровой Марии Сергеевне", "Ковалёву Петру Андреевичу",
              "Сидоренко Олегу Викторовичу", "Смирновой Екатерине Павловне")
UNKNOWN_RECIPIENT = "Неизвестному Адресату Адресатовичу"
BODY_MARKER = "Мы все помним о вас"  # letter text that must never reach a log or Redis

_WARM = """Здравствуйте!

Пишу вам из Петербурга. У нас выпал первый снег, и город стал тихим и светлым. Вечерами
я читаю книги и вспоминаю, как мы гуляли по набережной летом. """ + BODY_MARKER + """ и ждём.
Берегите себя и пишите, что вы сейчас читаете.

Обнимаю,
{name}

P.S. {ps}"""

_PS = ("Кот передаёт привет.", "Посадили яблоню во дворе.", "Дочка научилась читать.",
       "Купили новый чайник.", "Ходили на концерт в субботу.", "Починили велосипед.",
       "Весной поедем на дачу.", "Испекли пирог с капустой.", "Нашли старые фотографии.")
_NAMES = ("Анна", "Ольга", "Мария", "Елена", "Татьяна", "Наталья", "Ирина", "Светлана")


def warm_text(i: int) -> str:
    return _WARM.format(name=_NAMES[i % len(_NAMES)], ps=f"{_PS[i % len(_PS)]} ({i})")


class _StallingHandler(_Handler):
    """Accepts the message, then keeps the client waiting past its timeout before the
    250: the client cannot know the mail went through (RFC 1047's duplicate window)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        stall = self.sink.stall_after_data_s  # type: ignore[attr-defined]
        if stall and self.sink.stalls_left > 0:  # type: ignore[attr-defined]
            self.sink.stalls_left -= 1  # type: ignore[attr-defined]
            await asyncio.sleep(stall)
        return reply


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class ChaosStack(Stack):
    COMMANDS = {
        **Stack.COMMANDS,
        "beat2": ["-m", "gateway.cli", "beat", "--schedule", "{root}/beat-schedule-2"],
        "watch2": ["-m", "gateway.cli", "imap-watch"],
    }
    LINKS = ("redis", "imap", "smtp", "provider")

    def __init__(self, root: Path, dovecot: DovecotServer, redis_server: RedisServer,
                 database_url: str, *, proxied: tuple[str, ...] = (),
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(root, dovecot, redis_server.url, database_url, extra_env)
        self.redis_server = redis_server
        self.proxied = proxied
        self.proxies: dict[str, TcpProxy] = {}
        self.crash_dir = root / "crashes"
        self.sent: dict[str, str] = {}  # Message-ID -> writer address
        self.writers: set[str] = set()
        self.faults: list[str] = []
        self.allow_resent_mail = False  # set by tests that make SMTP outcomes ambiguous
        self._orphans: list[int] = []  # process groups of killed worker parents
        self.sink.stall_after_data_s = 0.0  # type: ignore[attr-defined]
        self.sink.stalls_left = 0  # type: ignore[attr-defined]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, *, processes: tuple[str, ...] = ("worker", "beat", "watch"),
              crash_at: tuple[str, ...] = ()) -> ChaosStack:
        super().start(processes=())
        self.sink._controller.handler = _StallingHandler(self.sink)  # new sessions use it
        upstream = {"redis": self.redis_server.port, "imap": self.dovecot.port,
                    "smtp": self.sink.port, "provider": self.simulator.port}
        for link in self.proxied:
            self.proxies[link] = TcpProxy(upstream[link], name=link).start()
        if "redis" in self.proxies:
            self.env["GATEWAY_BROKER_URL"] = f"redis://127.0.0.1:{self.proxies['redis'].port}/0"
        if "imap" in self.proxies:
            self.env["GATEWAY_IMAP_PORT"] = str(self.proxies["imap"].port)
        if "smtp" in self.proxies:
            self.env["GATEWAY_SMTP_PORT"] = str(self.proxies["smtp"].port)
        if "provider" in self.proxies:
            self.env["GATEWAY_PROVIDER_URL"] = f"http://127.0.0.1:{self.proxies['provider'].port}"
        if crash_at:
            self.env["GATEWAY_CRASH_AT"] = ",".join(crash_at)
            self.env["GATEWAY_CRASH_MARKER"] = str(self.crash_dir) + "/"
        for name in processes:
            self.start_process(name)
        return self

    def stop(self) -> None:
        self.dovecot.resume()  # never leave the session's Dovecot stopped
        for proxy in self.proxies.values():
            proxy.stop()
        for pgid in self._orphans:
            _killpg(pgid)
        super().stop()

    # -- acting ------------------------------------------------------------------------
    def post(self, i: int, recipient: str | None = None, writer: str | None = None) -> str:
        """Drop letter number i into the shared inbox; returns its writer's address."""
        writer = writer or f"writer{i}.{os.getpid()}@example.org"
        raw = letter(recipient or RECIPIENTS[i % len(RECIPIENTS)], warm_text(i),
                     sender=f"{_NAMES[i % len(_NAMES)]} Тестова <{writer}>")
        message_id = re.search(rb"^Message-ID:\s*<([^>]+)>", raw, re.M | re.I).group(1).decode()
        self.sent[message_id] = writer.lower()
        self.writers.add(writer.lower())
        self.send(raw)
        return writer

    def fault(self, what: str) -> None:
        self.faults.append(what)

    def proxy(self, link: str, mode: str, delay_s: float = 0.0) -> None:
        self.proxies[link].set(mode, delay_s)
        if mode != "pass":
            self.fault(f"{link}:{mode}")

    def worker_children(self) -> list[int]:
        return children(self.procs["worker"].pid)

    def kill_worker_child(self) -> None:
        # A child can exit between the listing and the kill (the pool replaces it): list again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for kid in self.worker_children():
                try:
                    os.kill(kid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.fault("kill -9 worker child")
                return
            time.sleep(0.1)
        raise AssertionError("the worker has no pool children")

    def kill_worker_parent(self) -> None:
        """SIGKILL the parent alone; its orphaned children finish or die on their own."""
        with self._procs_lock:
            proc = self.procs.pop("worker")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self._orphans.append(proc.pid)
        self.fault("kill -9 worker parent")

    def restart_redis_empty(self) -> None:
        self.redis_server.restart_empty()
        self.fault("redis restarted empty")

    def crashes(self) -> list[str]:
        try:
            return sorted(p.name for p in self.crash_dir.iterdir())
        except FileNotFoundError:
            return []

    def reply_to_all_submitted(self, by_email: bool = True) -> list[str]:
        numbers = [r["provider_number"] for r in self.letters() if r["state"] == "SUBMITTED"]
        for number in numbers:
            r = self.sim("POST", f"/_sim/letters/{number}/reply",
                         json={"pages": 1, "by_email": by_email})
            assert r.status_code in (200, 201), r.text
        return numbers

    def wait_states(self, expected: dict[str, int], timeout: float = 90.0) -> None:
        def done() -> bool:
            states: dict[str, int] = {}
            for row in self.letters():
                states[row["state"]] = states.get(row["state"], 0) + 1
            return states == expected
        self.wait(f"letters in states {expected}", done, timeout=timeout)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_quietly(argv: list[str]) -> None:
    subprocess.run(argv, check=False, capture_output=True, timeout=30)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
