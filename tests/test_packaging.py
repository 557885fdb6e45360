"""pcweak installed from a wheel (``pip install .`` / ``pip install git+URL``), not the set-up's
editable checkout: the wheel must carry what pcweak reads at run time from beside the package,
the compiled ops' sources and the configs (``pcweak.project_files``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pcweak", "cuda_ops", "configs")


def test_a_wheel_carries_the_ops_sources_and_configs_and_finds_them(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("pcweak-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("cuda_ops", "configs"):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file():
                assert f"pcweak/_bundled/{folder}/{f.relative_to(ROOT / folder).as_posix()}" in names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    code = ("import json, pcweak; from pcweak.ops import extension; from pcweak.demo import DEMO_CONFIG; "
            "s = extension._sources(False) + [extension.SRC_DIR / 'pcweak_ops_cuda.h']; "
            "print(json.dumps({'package': pcweak.__file__, 'ops': str(extension.SRC_DIR), 'key': extension.build_key(s, False), "
            "'demo': str(DEMO_CONFIG), 'demo_is_file': DEMO_CONFIG.is_file()}))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    installed = tmp_path / "site" / "pcweak"
    assert Path(got["package"]).parent == installed  # the wheel's pcweak, not the checkout's
    assert Path(got["ops"]) == installed / "_bundled" / "cuda_ops" and got["demo_is_file"]
    from pcweak.ops import extension
    here = extension.build_key(extension._sources(False) + [extension.SRC_DIR / "pcweak_ops_cuda.h"], False)
    assert got["key"] == here  # the same sources: the library the checkout built serves the wheel too
