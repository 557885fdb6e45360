"""Training and evaluation in several processes (DDP; here two CPU processes over gloo, as one
process per GPU would run): a fit runs through, and a score is the score of every scene, the
same as one process gives, not a mean of per-process scores."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PCWEAK = [sys.executable, "-m", "pcweak.cli"]
TWO_PROCESSES = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # a timeout: a collective one process never reaches waits forever
    return subprocess.run(PCWEAK + args, cwd=cwd, capture_output=True, text=True, timeout=300)


def _logged(out: str, key: str) -> float:
    """A metric from Lightning's printed table (``│ val/miou │ 0.07 │``)."""
    found = re.findall(rf"│\s*{re.escape(key)}\s*│\s*([-0-9.e]+)\s*│", out)
    assert len(found) == 1, out[-3000:]
    return float(found[0])


def test_each_process_evaluates_its_own_scenes(monkeypatch):
    """In a distributed run each process takes every other scene, none repeated (Lightning's
    default pads the shares with repeats, which would count twice); fewer scenes than processes
    is one error naming them (a process without a scene would leave the others waiting)."""
    from pcweak.train import eval_sampler
    assert eval_sampler.evaluation_sampler(range(3), "validate") is None  # one process
    monkeypatch.setattr(eval_sampler, "process_count", lambda: 2)
    import torch.distributed as dist
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda *a, r=rank: r)
        shares.append(list(eval_sampler.evaluation_sampler(range(5), "validate")))
    assert shares == [[0, 2, 4], [1, 3]]
    with pytest.raises(ValueError, match=r"^validation scenes: 1 scene\(s\) for 2 processes \(trainer.devices x "
                                         r"num_nodes\); each process evaluates at least one, so give at least 2"):
        eval_sampler.evaluation_sampler(range(1), "validate")


@pytest.mark.slow
def test_two_processes_detect_as_one(tmp_path):
    """The LiDAR detector: a fit in two processes (a batch without a box still reaches the
    regression head), then ``test`` in two processes prints one process's KITTI AP (the frames
    of both scored together, the result files written once) and ``predict`` counts both
    processes' frames."""
    data = ["--config", str(ROOT / "configs" / "kitti" / "clicks.yaml"), "--data.init_args.dataset", "synthetic",
            "--data.init_args.synthetic_train", "2", "--data.init_args.synthetic_val", "3",
            "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "1",
            "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.enable_progress_bar", "false"]
    fit = _run(["fit", *data, *TWO_PROCESSES, "--trainer.max_epochs", "1"], tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpt = next((tmp_path / "outputs").rglob("last.ckpt"))
    one = _run(["test", *data, "--trainer.accelerator", "cpu", "--ckpt_path", str(ckpt)], tmp_path)
    two = _run(["test", *data, *TWO_PROCESSES, "--ckpt_path", str(ckpt)], tmp_path)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    ap = [[ln.split(', "labels"')[0] for ln in r.stdout.splitlines() if ln.startswith('{"kitti_ap"')] for r in (one, two)]
    assert len(ap[0]) == len(ap[1]) == 1 and ap[1] == ap[0]
    assert '"frames": 3' in ap[0][0]
    pred = _run(["predict", *data, *TWO_PROCESSES, "--ckpt_path", str(ckpt)], tmp_path)
    assert pred.returncode == 0, pred.stderr[-3000:]
    assert re.search(r"pcweak predict: 3 predictions in \S+predictions", pred.stderr), pred.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals")
def test_two_processes_fit_stop_once_and_score_as_one(tmp_path):
    """The demo model fits in two processes (its point head: before, the network's unused voxel
    classifier stopped the first step, "parameters that were not used in producing the loss";
    per-process class lists made the validation's metric names differ, so the reduction of the
    first waited forever). SIGINT to the first process alone (``kill -INT``; the other trains
    on): the checkpoint is written without waiting for the other process (Lightning's
    ``save_checkpoint`` ends in a barrier, where the first waited forever), both stop, and the
    interruption is one line, not one per process. Validation of the fit's checkpoint in two
    processes then gives one process's mIoU to the digit on three scenes (two and one: no scene
    repeated to even the shares). A fit that runs to its end in two processes:
    ``test_two_processes_detect_as_one``."""
    data = ["--config", str(ROOT / "configs" / "demo.yaml"), "--data.init_args.synthetic_train", "2",
            "--data.init_args.synthetic_val", "3", "--data.init_args.voxel_size", "0.1",
            "--trainer.enable_progress_bar", "false", "--data.init_args.cache_dir", str(tmp_path / "cache")]
    p = subprocess.Popen(PCWEAK + ["fit", *data, *TWO_PROCESSES, "--trainer.max_epochs", "200"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "outputs" / "demo" / "points200" / "version_0" / "checkpoints"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None and not (folder / "last.ckpt").is_file():
            time.sleep(0.2)  # an epoch done: both processes training
        assert p.poll() is None, "the fit ended before it could be interrupted"
        time.sleep(1)
        os.kill(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err[-3000:]
    assert (folder / "interrupted.ckpt").is_file(), err[-3000:]
    assert err.count("pcweak fit: interrupted; every output written is whole") == 1, err[-3000:]
    ckpt = str(folder / "last.ckpt")
    one = _run(["validate", *data, "--trainer.accelerator", "cpu", "--ckpt_path", ckpt], tmp_path)
    two = _run(["validate", *data, *TWO_PROCESSES, "--ckpt_path", ckpt], tmp_path)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    for key in ("val/miou", "val/acc"):
        assert _logged(two.stdout, key) == _logged(one.stdout, key), key
