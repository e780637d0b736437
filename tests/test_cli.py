"""The `gateway` command as an organizer uses it (typer's runner, a real SQLite file and
the simulator over HTTP)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.config import get_settings
from gateway.directory import DEMO_CSV
from gateway.simulator.server import SimulatorServer


@pytest.fixture
def run(tmp_path, monkeypatch):
    sim = SimulatorServer(str(tmp_path / "sim.db"), token="t").start()
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'gw.db'}")
    monkeypatch.setenv("GATEWAY_PROVIDER_URL", sim.url)
    monkeypatch.setenv("GATEWAY_PROVIDER_TOKEN", "t")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    invoke("db", "upgrade")
    yield invoke
    sim.stop()
    get_settings.cache_clear()


def test_reimporting_the_directory_updates_in_place(run, tmp_path):
    assert "added 6, updated 0" in run("prisoners", "import", str(DEMO_CSV))
    changed = tmp_path / "moved.csv"
    text = DEMO_CSV.read_text(encoding="utf-8").replace("K101,Иванов,Иван,Иванович,1985,"
                                                         "Санкт-Петербург и Ленинградская область,"
                                                         "СИЗО-1 «Кресты»,78-sizo-1",
                                                         "K101,Иванов,Иван,Иванович,1985,Москва,"
                                                         "СИЗО-2 «Бутырка»,77-sizo-2")
    changed.write_text(text, encoding="utf-8")
    assert "would add 0, updated 1, unchanged 5" in run("prisoners", "import", str(changed),
                                                        "--dry-run")
    assert "added 0, updated 1, unchanged 5" in run("prisoners", "import", str(changed))


def test_a_bad_directory_row_is_named_and_fails(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,last_name,first_name,facility_name,facility_id,birth_year\n"
                   "K9,Орлова,,ИК-1,x-ik-1,nineteen\n", encoding="utf-8")
    out = run("prisoners", "import", str(bad), code=1)
    assert "line 2: missing first_name" in out


@pytest.mark.directory
def test_a_bad_row_in_the_old_csv_imports_nothing(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(DEMO_CSV.read_text(encoding="utf-8") + "K9,Орлова,,,,,ИК-1,x-ik-1,http\n",
                   encoding="utf-8")
    out = run("prisoners", "import", str(bad), code=1)
    assert "line 8: missing first_name" in out and "nothing imported" in out
    assert "added 6, updated 0" in run("prisoners", "import", str(DEMO_CSV))


def test_catalogue_sync_reports_the_directory_against_the_provider(run, tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text(DEMO_CSV.read_text(encoding="utf-8") +
                   "K999,Орлова,Вера,,1970,Марс,ИК-0,mars-ik-0,http\n", encoding="utf-8")
    run("prisoners", "import", str(csv))
    out = run("providers", "sync")
    assert "http: " in out and "facilities" in out
    assert "K999" in out and "mars-ik-0" in out  # the one facility the service doesn't reach


def test_status_and_accounts(run):
    assert "Letters" in run("status")
    out = run("user", "add", "alice", "--role", "moderator", "--password", "long-enough-1")
    assert "alice" in out and "moderator" in out
    run("user", "add", "alice", "--password", "long-enough-2", code=1)
    assert "set to" in run("user", "password", "alice", "--password", "long-enough-3")


@pytest.mark.privacy
def test_a_new_password_or_a_logout_from_the_shell_ends_dashboard_sessions(run):
    from sqlalchemy import func, select

    from gateway.db import session_factory
    from gateway.models import User, WebSession
    run("user", "add", "boris", "--role", "viewer", "--password", "long-enough-1")
    sessions = session_factory(get_settings().database_url)

    def open_sessions(n: int = 0) -> int:
        with sessions() as db:
            user_id = db.scalar(select(User.id).where(User.username == "boris"))
            for i in range(n):
                db.add(WebSession(token_hash=f"{n}-{i}".ljust(64, "0"), user_id=user_id,
                                  data={}))
            db.commit()
            return db.scalar(select(func.count()).select_from(WebSession))

    assert open_sessions(2) == 2
    assert "2 dashboard session(s) ended" in run("user", "password", "boris",
                                                 "--password", "long-enough-2")
    assert open_sessions() == 0
    assert open_sessions(1) == 1
    assert "1 dashboard session(s) of boris ended" in run("user", "logout", "boris")
    assert open_sessions() == 0
    run("user", "logout", "nobody", code=1)


@pytest.mark.campaigns
def test_campaigns_created_by_code_or_filter_and_listed_with_progress(run):
    run("prisoners", "import", str(DEMO_CSV))
    out = run("campaigns", "create", "8marta", "--title", "8 марта", "--prisoner", "K101",
              "--prisoner", "K102", "--budget", "3000")
    assert "for 2 prisoners" in out and "letters+8marta@" in out
    assert "no prisoner with the code(s) K999" in run("campaigns", "create", "x1", "--title",
                                                      "x", "--prisoner", "K999", code=1)
    assert "already used" in run("campaigns", "create", "8MARTA", "--title", "again",
                                 "--prisoner", "K101", code=1)
    out = run("campaigns", "create", "quiet", "--title", "Тихие", "--quiet-days", "30")
    assert "for 6 prisoners" in out  # nobody has had a letter yet
    listed = run("campaigns", "list")
    assert "8marta" in listed and "Тихие" in listed


@pytest.mark.parametrize("args", [["--pool", "prefork", "-c", "2"], ["-P", "prefork", "--concurrency", "2"]])
def test_the_worker_takes_the_options_its_help_names(monkeypatch, args):
    """`gateway worker --help` and the docs say `--pool prefork -c N`: Celery's own short
    options work too, and reach Celery as given."""
    execs = []
    monkeypatch.setattr("gateway.cli.os.execvpe", lambda *a: execs.append(a))
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 0, result.output
    [(_, argv, env)] = execs
    assert argv[argv.index("-P") + 1] == "prefork" and argv[argv.index("-c") + 1] == "2"
    assert env["MALLOC_ARENA_MAX"]
