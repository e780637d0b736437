"""`gateway demo`: the whole gateway on one machine, with local stand-ins for the shared
inbox (Dovecot), outgoing mail (an SMTP sink that delivers the gateway's own addresses into
Dovecot and keeps everything else as .eml files), and the prison service (the simulator)."""

from __future__ import annotations

import os
import secrets
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from rich.console import Console

from gateway.config import get_settings

console = Console()

SAMPLE = """Здравствуйте!

Пишу вам из Петербурга. У нас наконец выпал первый снег, и город стал совсем другим: тихим и светлым. Вечерами я читаю «Дар» Набокова, медленно, по главе в день, и думаю о том, как много в нём про память и про надежду.

Мы все помним о вас и ждём. Берегите себя. Если захотите, напишите, что вы сейчас читаете и чего вам не хватает: книги, новости, рассказы о чём-нибудь обычном.

Обнимаю,
Анна"""


def _env(base: Path, redis_url: str, dovecot_port: int, smtp_port: int, sim_port: int,
         web_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GATEWAY_DATABASE_URL": get_settings().database_url,
        "GATEWAY_BROKER_URL": redis_url,
        "GATEWAY_IMAP_HOST": "127.0.0.1", "GATEWAY_IMAP_PORT": str(dovecot_port),
        "GATEWAY_SMTP_HOST": "127.0.0.1", "GATEWAY_SMTP_PORT": str(smtp_port),
        "GATEWAY_PROVIDER_URL": f"http://127.0.0.1:{sim_port}",
        "GATEWAY_WEB_PORT": str(web_port),
        "GATEWAY_SWEEP_INTERVAL_S": "5", "GATEWAY_STUCK_AFTER_S": "20",
        "GATEWAY_REPLY_POLL_S": "5", "GATEWAY_STATUS_POLL_S": "30",
        "PYTHONUNBUFFERED": "1",
        # The demo's writers are made up: no confirmation round-trip before the first letter.
        "GATEWAY_CONFIRM_SENDERS": "false",
    })
    env.setdefault("GATEWAY_SECRET_KEY", _secret(base))
    return env


def _secret(base: Path) -> str:
    path = base / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _redis(url: str, server_cls):
    """Use the Redis at the configured URL if one answers; else start our own there."""
    import redis
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return None
    except redis.exceptions.ConnectionError:
        port = redis.connection.parse_url(url).get("port", 6379)
        return server_cls(port=port).start()


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def _check_ports_free(ports: dict[str, int]) -> None:
    import socket
    busy = []
    for name, port in ports.items():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"{name} port {port}")
    if busy:
        raise SystemExit("cannot start the demo: " + ", ".join(busy) + " already in use "
                         "(another demo still running?). Stop it, or set GATEWAY_IMAP_PORT, "
                         "GATEWAY_SMTP_PORT, GATEWAY_PROVIDER_URL or --web-port.")


def run_demo(base: Path, *, web_port: int = 8000) -> None:
    from gateway.devstack.dovecot import DovecotServer
    from gateway.devstack.ports import wait_for_port
    from gateway.devstack.process_group import ProcessGroup
    from gateway.devstack.redis_server import RedisServer
    from gateway.devstack.smtp import SmtpSink
    from gateway.simulator.server import SimulatorServer

    settings = get_settings()
    sim_port = int(settings.provider_url.rsplit(":", 1)[-1].strip("/"))
    _check_ports_free({"IMAP": settings.imap_port, "SMTP": settings.smtp_port,
                       "simulator": sim_port, "dashboard": web_port})
    base.mkdir(parents=True, exist_ok=True)
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    # The stand-ins run in this process (the SMTP server logs every connection at INFO):
    # their lines go to a file like every other process's, so the terminal keeps to the
    # banner and to what goes wrong.
    from gateway import logging_setup
    logging_setup.configure(logfile=str(logs / "stand-ins.log"))
    outbox = base / "outgoing-mail"
    step = console.status("starting", spinner="dots")
    step.start()
    try:
        step.update("starting the shared inbox (Dovecot)")
        dovecot = DovecotServer(base / "dovecot", port=settings.imap_port).start()
        step.update("starting Redis")
        redis_server = _redis(settings.broker_url, RedisServer)
        step.update("starting the mail server stand-in (SMTP)")
        sink = SmtpSink(port=settings.smtp_port, maildir=outbox, deliver={
            settings.gateway_address: (dovecot, "letters"),
            settings.org_reply_email: (dovecot, "replies"),
        }).start()
        step.update("starting the prison e-mail service simulator")
        simulator = SimulatorServer(str(base / "simulator.db"), port=sim_port,
                                    token=settings.provider_token.get_secret_value(),
                                    smtp_host="127.0.0.1", smtp_port=sink.port).start()
        env = _env(base, settings.broker_url, dovecot.port, sink.port, sim_port, web_port)
        gw = [sys.executable, "-m", "gateway.cli"]
        step.update("creating the database and the demo directory")
        subprocess.run([*gw, "db", "upgrade"], env=env, check=True, capture_output=True)
        from gateway.directory import DEMO_CSV
        subprocess.run([*gw, "prisoners", "import", str(DEMO_CSV)], env=env, check=True,
                       capture_output=True)
        password = secrets.token_urlsafe(9)
        added = subprocess.run([*gw, "user", "add", "admin", "--role", "admin",
                                "--password", password], env=env, capture_output=True)
        if added.returncode != 0:  # a demo run before: give admin this run's password
            subprocess.run([*gw, "user", "password", "admin", "--password", password],
                           env=env, check=True, capture_output=True)
        procs: dict[str, ProcessGroup] = {}
        for name, argv in {
            "worker": [*gw, "worker"],  # the default: one process, eight threads
            # Beat watches the inbox too: one process less on a laptop (~50 MB).
            "beat": [*gw, "beat", "--schedule", str(base / "celerybeat-schedule"),
                     "--watch-inbox"],
            "web": [*gw, "web", "--port", str(web_port), "--workers", "1"],
        }.items():
            step.update(f"starting {name}")
            # Own process groups that die with us: a killed demo leaves nothing behind.
            procs[name] = ProcessGroup(argv, logs / f"{name}.log", env=env)
            procs[name].start()
        wait_for_port("127.0.0.1", web_port, timeout=30)
    finally:
        step.stop()

    console.print(f"""
[bold green]The gateway is running.[/]

  Write a letter:   send e-mail to [bold]{settings.gateway_address}[/] through SMTP 127.0.0.1:{sink.port}
                    (any mail client, or: [bold]gateway demo-send --to "Петровой Марии"[/])
                    Put the prisoner's name in the subject, e.g. "Петровой Марии Сергеевне".
  Dashboard:        [bold]http://127.0.0.1:{web_port}/[/]  user [bold]admin[/], password [bold]{password}[/]
  Mail to writers:  {outbox}/*.eml  (notices, replies with scans attached)
  Prison service:   {simulator.url}  (the simulator: GET /_sim/letters)
  A reply:          [bold]gateway demo-reply[/]  (the prisoner answers the latest letter, by API and e-mail)
  Status:           gateway status
  Logs:             {logs}/

Press Ctrl+C to stop.""", soft_wrap=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _supervise(procs, logs)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for p in procs.values():
            p.stop(grace=10)
        simulator.stop()
        sink.stop()
        if redis_server is not None:
            redis_server.stop()
        dovecot.stop()


def _supervise(procs: dict, logs: Path, *, burst: int = 3, window_s: float = 60.0) -> None:
    """Restart a process that stops on its own, as docker-compose's `restart: unless-stopped`
    does in production (the Celery worker can exit when Redis comes back empty: kombu);
    give up on one that stops `burst` times within `window_s`."""
    stops: dict[str, list[float]] = {name: [] for name in procs}
    while True:
        time.sleep(1)
        for name, proc in procs.items():
            code = proc.exited()
            if code is None:
                continue
            now = time.monotonic()
            stops[name] = [t for t in stops[name] if now - t < window_s] + [now]
            if len(stops[name]) >= burst:
                console.print(f"[red]{name} stopped {burst} times in a minute (exit {code}); "
                              f"see {logs}/{name}.log[/]")
                return
            console.print(f"[yellow]{name} stopped (exit {code}); restarting it. "
                          f"See {logs}/{name}.log[/]")
            proc.stop()
            proc.start()


def send_sample_letter(*, to: str, sender: str, text: str | None = None) -> None:
    settings = get_settings()
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = settings.gateway_address
    msg["Subject"] = to
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(text or SAMPLE)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        smtp.send_message(msg)


def simulate_reply(number: str | None = None, pages: int = 1) -> str:
    """Make the simulator produce a handwritten reply to a letter (the latest by default)."""
    import httpx
    settings = get_settings()
    headers = {"Authorization": f"Bearer {settings.provider_token.get_secret_value()}"}
    base = settings.provider_url.rstrip("/")
    if number is None:
        body = httpx.get(f"{base}/_sim/letters", headers=headers, timeout=10).json()
        letters = body["letters"] if isinstance(body, dict) else body
        if not letters:
            raise SystemExit("the simulator has no letters yet: send one with `gateway demo-send`")
        number = letters[-1]["number"]
    r = httpx.post(f"{base}/_sim/letters/{number}/reply", headers=headers, timeout=30,
                   json={"pages": pages, "by_email": True})
    r.raise_for_status()
    return number
