"""The README's commands work as written: every `pcweak` command of its sections on a synthetic
scene runs, in order, in a fresh folder (real-data, training and window commands are covered
by their own tests)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path


from pcweak.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    cmds = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if not line.startswith(".venv/bin/pcweak "):
                continue
            words = shlex.split(line)[1:]
            if words[0] in ("fit", "validate", "test", "predict"):
                continue  # training: tests/test_training.py and test_detection.py
            if any(w.startswith(("scannet:", "kitti:")) or "DATA/" in w or "/data/" in w for w in words):
                continue  # real data: the reader tests
            if words[0] == "viz" and not {"--png", "--export"} & set(words):
                continue  # the window: tests/test_viz.py
            cmds.append(line)
    return cmds


def test_the_readme_names_its_commands():
    cmds = readme_commands()
    for verb in ("info", "simulate", "label", "evaluate", "viz"):
        assert any(c.split()[1] == verb for c in cmds), verb


def test_readme_commands_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for line in readme_commands():
        code = main(shlex.split(line)[1:])
        err = capsys.readouterr().err
        assert code == 0, f"{line}\n{err[-2000:]}"
    assert (tmp_path / "out.png").is_file() and (tmp_path / "out.ply").is_file()
    assert (tmp_path / "plots").is_dir()
