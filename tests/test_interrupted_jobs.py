"""kill -9 (and Ctrl-C) in the middle of a job: no partial output, no live process, no lock that
blocks the next call, and the re-run gives the same bytes as an uninterrupted run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcweak import weak
from pcweak.data.synthetic_indoor import synthetic_room

PCWEAK = [sys.executable, "-m", "pcweak.cli"]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += list(kids - out)
            out |= kids
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_gone(kids: set[int], why: str) -> None:
    """Every one of ``kids`` ends within 30 s; else the test fails with ``why``."""
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)], why


def _rerun_gives_the_reference(args: list[str], out: Path, scenes: Path) -> None:
    """The same command again succeeds and writes what an uninterrupted run wrote, byte for byte."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for ref in sorted((scenes / "reference").glob("*.npz")):
        assert (out / ref.name).read_bytes() == ref.read_bytes(), ref.name


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    for i in range(4):
        s = synthetic_room(40 + i, density=400.0, n_frames=0)
        s.save(d / "scenes" / f"room{i}.npz")
        weak.points(s, count=80, seed=i).save(d / "weak" / f"room{i}.npz")
    ref = d / "reference"
    subprocess.run(PCWEAK + ["label", str(d / "scenes"), "--weak", str(d / "weak"), "-o", str(ref)], check=True,
                   capture_output=True, timeout=600)
    return d


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the workers")
@pytest.mark.parametrize("workers", [1, 2])
def test_orphans_and_partial_files_after_kill_9_mid_label(scenes, tmp_path, workers):
    out = tmp_path / "out"
    args = PCWEAK + ["label", str(scenes / "scenes"), "--weak", str(scenes / "weak"), "-o", str(out),
                     "--workers", str(workers)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    kids: set[int] = set()
    while time.time() < deadline and p.poll() is None:  # wait until the work is under way
        kids |= _children(p.pid)
        if (workers == 1 or len(kids) >= workers) and (out.is_dir() or time.time() > deadline - 290):
            break
        time.sleep(0.2)
    assert p.poll() is None, "the job finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    _wait_until_gone(kids, "workers outlived their parent")
    _rerun_gives_the_reference(args, out, scenes)
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.tmp"))


def test_hang_on_a_stale_ops_lock_never_happens(tmp_path):
    """A process killed while torch's extension loader held the cache's lock leaves the lock
    file behind; loading the built library must not wait on it."""
    from pcweak.ops import extension
    lib = extension.compiled()
    if lib is None:
        pytest.skip("the compiled ops are not available on this machine (reference backend)")
    src = Path(lib.__file__).parent
    cache = tmp_path / "cache" / "ops" / src.name
    cache.mkdir(parents=True)
    shutil.copy(lib.__file__, cache / Path(lib.__file__).name)
    (cache / "lock").write_text("")  # what a killed build leaves
    (cache / ".build-old").mkdir()
    (cache / ".build-old" / "lock").write_text("")
    env = {**os.environ, "PCWEAK_CACHE": str(tmp_path / "cache"), "PCWEAK_OPS": "compiled"}
    r = subprocess.run([sys.executable, "-c", "from pcweak.ops.extension import backend; print(backend())"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "compiled", r.stderr[-2000:]


@pytest.mark.slow
def test_kill_9_during_the_first_build_of_the_ops(tmp_path):
    """Killed while compiling into an empty cache: the next call builds again and succeeds."""
    env = {**os.environ, "PCWEAK_CACHE": str(tmp_path / "cache"), "PCWEAK_OPS": "compiled"}
    code = "from pcweak.ops.extension import backend; print(backend())"
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cache").rglob(".build-*")):
        time.sleep(0.2)
    time.sleep(2.0)  # the compiler is running now
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("compiled"), r.stderr[-2000:]
    assert len(list((tmp_path / "cache").rglob("*.so"))) == 1


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the workers")
def test_a_worker_killed_mid_label_is_named_and_the_rerun_labels_the_rest(scenes, tmp_path):
    """What the kernel's out-of-memory killer does to one worker of ``--workers 2``: one error
    line that says which scenes are left and what to do, no traceback; the rerun resumes."""
    out = tmp_path / "out"
    args = PCWEAK + ["label", str(scenes / "scenes"), "--weak", str(scenes / "weak"), "-o", str(out), "--workers", "2"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    kids: set[int] = set()
    while time.time() < deadline and p.poll() is None and len(kids) < 2:
        kids = _children(p.pid)
        time.sleep(0.2)
    assert p.poll() is None and len(kids) >= 2, "the job finished before a worker could be killed"
    time.sleep(1.0)  # under way: the workers have taken their first scenes
    os.kill(min(kids), signal.SIGKILL)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("pcweak label: error: a worker process was killed before it finished"), err[-2000:]
    assert "fewer --workers" in lines[-1] and "room" in lines[-1]
    assert "GB per million points of a scene (2.5 along a LiDAR's scan lines)" in lines[-1]
    left = int(lines[-1].split("before it finished ")[1].split(" of")[0])
    assert 1 <= left <= 4 and len(list(out.glob("room*.npz"))) == 4 - left
    _rerun_gives_the_reference(args, out, scenes)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the workers")
@pytest.mark.parametrize("workers, sig", [(1, signal.SIGINT), (2, signal.SIGINT), (2, signal.SIGTERM)])
def test_ctrl_c_mid_label_is_one_line_and_stops_the_workers(scenes, tmp_path, workers, sig):
    """Ctrl-C (SIGINT to the terminal's process group, parent and workers alike), or SIGTERM to
    the parent (``kill``, a batch scheduler): one line that says what to do, exit status 128 +
    the signal, no traceback from the parent or a worker, no worker left and none going on to its
    next scene; the rerun labels the rest as an uninterrupted run."""
    out = tmp_path / "out"
    args = PCWEAK + ["label", str(scenes / "scenes"), "--weak", str(scenes / "weak"), "-o", str(out),
                     "--workers", str(workers)]
    # a shell's background job ignores SIGINT; a terminal's foreground one does not
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    kids: set[int] = set()
    # under way: a first scene written, the next being labelled (not while modules still load,
    # where an extension's import turns the interrupt into its own "initialization failed")
    while time.time() < deadline and p.poll() is None and not list(out.glob("room*.npz")):
        kids |= _children(p.pid)
        time.sleep(0.05)
    assert p.poll() is None, "the job finished before it could be interrupted"
    kids |= _children(p.pid)
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)
    else:
        os.kill(p.pid, sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    said = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert (f"pcweak label: {said}; every output written is whole; the same command labels only the scenes "
            "without a current output") in err
    _wait_until_gone(kids, "workers outlived the interrupt")
    _rerun_gives_the_reference(args, out, scenes)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_mid_fit_saves_a_checkpoint_that_resumes(tmp_path, sig):
    """Ctrl-C (or SIGTERM, a batch scheduler's) during training: Lightning's graceful stop, then
    ``interrupted.ckpt`` beside the run's checkpoints, the command to resume from it, which
    continues the step count, and the exit status of any interrupted command."""
    import torch
    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    args = PCWEAK + ["fit", "--config", demo, "--trainer.max_epochs", "200", "--data.init_args.synthetic_train", "2",
                     "--data.init_args.synthetic_val", "1", "--data.init_args.voxel_size", "0.1",
                     "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.enable_progress_bar", "false"]
    p = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "outputs" / "demo" / "points200" / "version_0" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and not (folder / "last.ckpt").is_file():
        time.sleep(0.2)  # an epoch done: steps to resume from
    assert p.poll() is None, "the fit ended before it could be interrupted"
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)
    else:
        os.kill(p.pid, sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err[-2000:]  # as for any command, not Lightning's exit 1
    assert "Traceback" not in err, err[-2000:]
    said = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert err.rstrip().endswith(f"pcweak fit: {said}; every output written is whole"), err[-2000:]
    saved = folder / "interrupted.ckpt"
    assert "the same command with --ckpt_path outputs/demo/points200/version_0/checkpoints/interrupted.ckpt" in err
    step = torch.load(saved, map_location="cpu", weights_only=False)["global_step"]
    epoch = torch.load(saved, map_location="cpu", weights_only=False)["epoch"]
    assert step >= 1
    if sig != signal.SIGINT:
        return  # resuming is the same either way
    r = subprocess.run(args[:args.index("200")] + [str(epoch + 2)] + args[args.index("200") + 1:] +
                       ["--ckpt_path", str(saved)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    last = tmp_path / "outputs" / "demo" / "points200" / "version_1" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] > step
