"""The long-lived processes load only what they use: beat and the inbox watcher send tasks
by name and never import the pipeline (rules, lingua, pymorphy), and the commands start
the processes the memory budget was measured with (bench/README.md, proposal 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gateway.cli as cli

HEAVY = ("workers.tasks", "gateway.rules", "lingua", "pymorphy3", "gateway.pipeline.checking",
         "gateway.providers.registry")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; "
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1],
                         env={"GATEWAY_SECRET_KEY": "x", "PATH": "/usr/bin:/bin"})
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_slim_app_and_the_watcher_do_not_import_the_pipeline():
    loaded = _modules_after("import workers.sender, gateway.cli, gateway.heartbeat, "
                            "gateway.pipeline.watcher")
    assert "celery" in loaded  # it did import what it needs
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_beat_loads_no_task_module():
    from workers.sender import app
    assert not app.conf.include and not app.conf.imports


def test_the_worker_app_registers_every_task_and_routes_by_name_as_the_tasks_do():
    from workers.celery_app import app
    from workers.sender import app as slim
    assert app is slim  # one configuration, so a task sent by name is routed alike
    app.loader.import_default_modules()
    import workers.tasks as tasks
    for entry in slim.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
    route = slim.amqp.router.route({}, tasks.fetch_inbox.name, (), {})
    assert route["queue"].name == "intake"
    assert slim.amqp.router.route({}, tasks.send_mail.name, (), {})["queue"].name == "mail"


def test_the_watcher_opens_the_inbox_the_ingest_task_opens():
    from workers.tasks import inbox
    assert cli._inbox() == inbox()


@pytest.fixture
def execvp(monkeypatch):
    calls, envs = [], []
    monkeypatch.setattr(cli.os, "execvp", lambda path, argv: calls.append(argv))
    monkeypatch.setattr(cli.os, "execvpe", lambda path, argv, env: calls.append(argv)
                        or envs.append(env))

    def invoke(*args: str) -> list[str]:
        result = CliRunner().invoke(cli.app, list(args))
        assert result.exit_code == 0, result.output
        (argv,) = calls
        return argv
    invoke.envs = envs
    return invoke


def test_beat_runs_the_slim_app(execvp, tmp_path):
    argv = execvp("beat", "--schedule", str(tmp_path / "schedule"))
    assert argv[argv.index("-A") + 1] == "workers.sender"


@pytest.mark.perf
def test_beat_can_watch_the_inbox_itself_and_still_loads_no_pipeline(execvp, tmp_path):
    argv = execvp("beat", "--schedule", str(tmp_path / "schedule"), "--watch-inbox")
    assert argv[argv.index("-A") + 1] == "workers.beat_watch"
    loaded = _modules_after("import workers.beat_watch, gateway.db, gateway.heartbeat, "
                            "gateway.mail.imap, gateway.pipeline.watcher")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.perf
def test_imap_watch_runs_the_small_watcher_process(execvp):
    argv = execvp("imap-watch")
    assert argv[argv.index("-m") + 1] == "workers.watch"
    # Everything the watcher process imports (main() imports inside, so name them here).
    loaded = _modules_after("import workers.watch, gateway.config, gateway.db, "
                            "gateway.heartbeat, gateway.logging_setup, gateway.mail.imap, "
                            "gateway.pipeline.watcher, workers.sender")
    assert "imapclient" in loaded and "celery" in loaded
    # Its heartbeat is one Core statement: not even the ORM (~6 MB) is loaded.
    lean = {"gateway.cli", "typer", "rich", "gateway.models", "gateway.pipeline.intake",
            "sqlalchemy.orm", *HEAVY}
    assert not loaded & lean, sorted(loaded & lean)


def test_web_is_one_process_with_threads_by_default(execvp):
    argv = execvp("web")
    assert argv[argv.index("-w") + 1] == "1" and argv[argv.index("--threads") + 1] == "8"


@pytest.mark.perf
def test_the_worker_is_one_threaded_process_by_default(execvp):
    argv = execvp("worker")
    assert argv[argv.index("-P") + 1] == "threads" and argv[argv.index("-c") + 1] == "8"


@pytest.mark.perf
@pytest.mark.parametrize("command", ["worker", "web"])
def test_threaded_processes_run_with_two_malloc_arenas_unless_told_otherwise(
        execvp, monkeypatch, command):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    execvp(command)
    assert execvp.envs[-1]["MALLOC_ARENA_MAX"] == "2"
    assert execvp.envs[-1]["PATH"] == os.environ["PATH"]


@pytest.mark.perf
def test_an_operators_malloc_arena_max_wins(execvp, monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    execvp("worker")
    assert execvp.envs[-1]["MALLOC_ARENA_MAX"] == "8"


@pytest.mark.perf
def test_one_parse_worker_serves_a_worker_process():
    from gateway.mail import bounded
    bounded.parse_message_bounded(b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n")
    assert bounded._default_parser()._slots._value <= 1 and len(bounded._default_parser().workers) == 1
