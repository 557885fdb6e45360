"""The README's commands work as written: every `pcweak` command of its sections on a synthetic
scene runs, in order, in a fresh folder; so does every Python block; the training commands run
as written with a budget appended (one epoch, one or two scenes); real-data lines are covered by
the reader tests and the window by tests/test_window.py."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from pcweak.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


TRAINING = ("fit", "validate", "test", "predict")


def readme_commands(training: bool = False) -> list[str]:
    """The README's `.venv/bin/pcweak` lines that need no downloaded data, in order: the
    training lines when ``training``, the others otherwise (with the `printf` lines that write
    their input files, run by the shell)."""
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    cmds = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("printf ") and not training:
                cmds.append(line)
                continue
            if not line.startswith(".venv/bin/pcweak "):
                continue
            words = shlex.split(line)[1:]
            if (words[0] in TRAINING) != training:
                continue
            if any(w.startswith(("scannet:", "kitti:")) or "DATA/" in w or "/data/" in w for w in words):
                continue  # real data: the reader tests
            if words[0] == "viz" and not {"--png", "--export"} & set(words):
                continue  # the window: tests/test_viz.py
            cmds.append(line)
    return cmds


def test_the_readme_names_its_commands():
    cmds = readme_commands()
    for verb in ("info", "simulate", "import", "label", "evaluate", "viz"):
        assert any(c.split()[1] == verb for c in cmds), verb


def test_readme_commands_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for line in readme_commands():
        if line.startswith("printf "):
            subprocess.run(line, shell=True, check=True, cwd=tmp_path)
            continue
        code = main(shlex.split(line)[1:])
        err = capsys.readouterr().err
        assert code == 0, f"{line}\n{err[-2000:]}"
    assert (tmp_path / "out.png").is_file() and (tmp_path / "out.ply").is_file()
    assert (tmp_path / "plots").is_dir()


INDOOR_BUDGET = ["--trainer.max_epochs", "1", "--data.init_args.synthetic_train", "1", "--data.init_args.synthetic_val", "1",
                 "--trainer.enable_progress_bar", "false"]
LIDAR_BUDGET = INDOOR_BUDGET + ["--data.init_args.num_workers", "0", "--data.init_args.batch_size", "1",
                                "--data.init_args.voxel_size", "[0.1, 0.1, 0.2]"]


@pytest.mark.slow
def test_readme_training_commands_run_as_written_on_a_small_budget(tmp_path, monkeypatch, capsys):
    cmds = readme_commands(training=True)
    assert {c.split()[1] for c in cmds} >= {"fit", "validate", "test"} and any("--ckpt_path" in c for c in cmds)
    (tmp_path / "configs").symlink_to(README.parent / "configs")  # the README's paths are from the repository root
    monkeypatch.chdir(tmp_path)
    for line in cmds:
        words = shlex.split(line)[1:]
        budget = LIDAR_BUDGET if any("kitti" in w for w in words) else INDOOR_BUDGET
        try:
            code = main(words + budget)
        except SystemExit as e:  # --print_config prints and exits, as LightningCLI does in a shell
            code = e.code or 0
        err = capsys.readouterr().err
        assert code == 0, f"{line}\n{err[-2000:]}"
    assert (tmp_path / "outputs" / "demo" / "points200" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "outputs" / "kitti" / "clicks").glob("version_*/kitti_results/ids.txt"))  # test's own run folder


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    """Each ```python block of the README, in order, in a fresh namespace, in a folder holding
    the files its `printf` lines write."""
    monkeypatch.chdir(tmp_path)
    for line in readme_commands():
        if line.startswith("printf "):
            subprocess.run(line, shell=True, check=True, cwd=tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i}", "exec"), {"__name__": f"readme_block_{i}"})


def test_the_set_up_installs_the_system_libraries_open3d_links():
    """scripts/setup.sh's apt list holds every package pcweak's Open3D message names, and the
    README names them for a fresh Debian."""
    from pcweak.open3d_lib import OPEN3D_SYSTEM_PACKAGES
    setup = (README.parent / "scripts" / "setup.sh").read_text()
    apt = re.search(r"^apt_packages=\((.*)\)$", setup, re.M)
    assert apt is not None
    assert set(OPEN3D_SYSTEM_PACKAGES) <= set(apt.group(1).split())
    install = README.read_text().split("## 1. Install", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{p}`" in install for p in OPEN3D_SYSTEM_PACKAGES if p != "libgomp1")
