"""The client keeps templates/ at the top of the repository; the wheel carries it inside the
package as gateway/templates (gateway/templating.py finds either). Everything else about
the build is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "templates"
        if source.is_dir():  # absent only when building from an sdist that lacks it
            shutil.copytree(source, Path(self.build_lib) / "gateway" / "templates",
                            dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithTemplates})
