"""The one build step pyproject.toml cannot say: a wheel carries the project's ``cuda_ops/`` and
``configs/`` in ``pcweak/_bundled/`` (pcweak.project_files), since it holds only what lies inside
its packages. An editable install reads them from the checkout and copies nothing."""
import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("project_files", ROOT / "pcweak" / "project_files.py")
project_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project_files)  # a leaf module: no pcweak dependency is needed to build


class BuildWithProjectFolders(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in project_files.PROJECT_FOLDERS:
            target = Path(self.build_lib) / "pcweak" / project_files.BUNDLED.name / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithProjectFolders})
