"""`pip install .` (a wheel, not the checkout) gives a working gateway: templates,
migrations and data files inside the package, and no demo or test servers required."""

from __future__ import annotations

import os
import re
import shutil
import site
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(".git", ".venv", "build", "var", "__pycache__", "*.egg-info",
                               "bench", "fuzz", "tests", ".pytest_cache", ".ruff_cache")


def run(*argv, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=300, **kw)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the gateway installed from its wheel (--no-deps: its
    dependencies are this venv's, seen through a path file, without this checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_SKIP)  # a clean tree: no stale build/
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", tmp / "dist", source, cwd=tmp)
    [wheel] = (tmp / "dist").glob("*.whl")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    [packages] = (venv / "lib").glob("python3*/site-packages")
    # A bare path line: the other venv's own .pth files (its editable checkout) stay unread.
    (packages / "deps.pth").write_text(site.getsitepackages()[0] + "\n")
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
        "--no-deps", "-q", wheel, cwd=tmp)
    return venv


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PYTHON"))}
    return {**env, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp}/gateway.db"}


def test_an_installed_wheel_migrates_a_database_and_renders(installed, tmp_path):
    python = installed / "bin" / "python"
    env = env_for(tmp_path)
    where = run(python, "-c", "import gateway, gateway.templating as t; "
                "print(gateway.__file__); print(t.TEMPLATES_DIR)",
                cwd=tmp_path, env=env).stdout.split()
    assert all(p.startswith(str(installed)) for p in where), where  # not the checkout
    assert Path(where[1], "email", "sent.txt.j2").is_file()

    run(installed / "bin" / "gateway", "db", "upgrade", cwd=tmp_path, env=env)
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        [version] = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"letters", "inbound_messages", "senders", "outbound_mail"} <= tables
    assert version and version in _head_revisions()

    rendered = run(python, "-c", """
from gateway.config import Settings
from gateway.formatting import render_letter
from gateway.models import Prisoner
from gateway.providers.registry import open_provider
from gateway.directory import DEMO_CSV
from gateway.web.app import create_app
p = Prisoner(last_name="Петрова", first_name="Мария", middle_name="Сергеевна",
             facility_name="СИЗО-2", facility_id="77-sizo-2", code="K102")
print(render_letter("http", prisoner=p, writer_name="Анна", body="Здравствуйте!\\n\\nЖдём."))
assert DEMO_CSV.is_file() and open_provider("post", Settings()).facilities()
app = create_app(Settings())
page = app.test_client().get("/login")
assert page.status_code == 200 and b"<form" in page.data, page.status_code
# The compiled Russian catalogue ships in the wheel: the login page is Russian by default.
assert '<html lang="ru">' in page.get_data(as_text=True), page.get_data(as_text=True)[:200]
assert "Войти" in page.get_data(as_text=True)
print("dashboard ok")
""", cwd=tmp_path, env=env).stdout
    assert "Ждём.\n\nАнна" in rendered  # the letter template signed it
    assert "dashboard ok" in rendered


def test_the_wheel_needs_no_demo_servers(installed):
    [wheel] = (installed.parent / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert any(n.startswith("gateway/templates/email/") for n in names)
    assert "gateway/migrations/env.py" in names
    assert "gateway/web/translations/ru/LC_MESSAGES/messages.mo" in names
    assert any(n.startswith("gateway/migrations/versions/") and n.endswith(".py") for n in names)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert all("extra ==" in line for line in requires if "aiosmtpd" in line)
    assert any("aiosmtpd" in line for line in requires)  # behind the demo extra


def _head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from gateway.migrate import alembic_config
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def test_the_lock_files_pin_every_dependency_pyproject_names():
    """scripts/setup.sh installs the lock with --no-deps for the project itself: a dependency
    added to pyproject.toml but not re-locked (./scripts/lock) would be missing at run time."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {"prod": list(project["dependencies"])}
    for extra in ("demo", "test"):
        wanted[extra] = wanted["prod"] + [r for r in project["optional-dependencies"][extra]
                                          if not r.startswith("prison-letters-gateway")]
        if extra == "test":
            wanted[extra] += project["optional-dependencies"]["demo"]
    for flavour, requirements in wanted.items():
        lock = (ROOT / "requirements" / f"{flavour}.txt").read_text()
        pinned = {canonicalize_name(m) for m in re.findall(r"^([A-Za-z0-9._-]+)==", lock, re.M)}
        missing = {Requirement(r).name for r in requirements
                   if Requirement(r).marker is None or Requirement(r).marker.evaluate()} - pinned
        missing = {m for m in missing if canonicalize_name(m) not in pinned}
        assert not missing, f"requirements/{flavour}.txt lacks {sorted(missing)}: run ./scripts/lock"
