#!/usr/bin/env bash
# The checks only a machine with an NVIDIA GPU can run (CI never runs this script):
#   1. the set-up's GPU path (CUDA torch, spconv-cu12x),
#   2. the compiled ops built with their CUDA kernels, and the CUDA tests (ops against the CPU
#      kernels, spconv's CUDA convolutions against dense conv3d, nvcc on each .cu),
#   3. `pcweak bench ops` on the GPU,
#   4. a short `pcweak fit` of the demo config (in float32 and in float16 AMP, `16-mixed`, the
#      precision the README offers on GPUs) and of a KITTI config on the GPU,
#   5. a short `pcweak fit` of an instance-segmentation config (GP box pseudo-labels) on the GPU.
# Prints one JSON object on stdout and writes it to gpu_check.json, beside logs.tar.gz (a log per
# step), in $OUT (the device tool's output folder) or a temporary folder. Exit status 0 when every
# check passed.
# A machine with no package registry: PCWEAK_PYTHON=python3 uses that interpreter's CUDA torch
# instead of running the set-up (step 1 is then recorded as skipped), and
# PCWEAK_OFFLINE_SITE=site.tar.xz (made by scripts/offline_site.sh) adds the packages it lacks.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULT=${OUT:-$(mktemp -d)}
LOG=$(mktemp -d)
mkdir -p "$RESULT"
export PCWEAK_GPU=1 PYTHONUNBUFFERED=1
export PCWEAK_CACHE=${PCWEAK_CACHE:-$(mktemp -d)}  # a fresh build of the ops, with their CUDA kernels
: >"$LOG/steps.txt"

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, keep its log, status and seconds
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  echo "$name $rc $((SECONDS - t0))" >>"$LOG/steps.txt"
  tar -czf "$RESULT/logs.tar.gz" -C "$LOG" .  # after every step: a run stopped early keeps its logs
  return $rc
}

if [ -n "${PCWEAK_PYTHON:-}" ]; then
  PY=$PCWEAK_PYTHON
  echo "setup skipped 0" >>"$LOG/steps.txt"
  if [ -n "${PCWEAK_OFFLINE_SITE:-}" ]; then
    site=$(mktemp -d)
    step offline_site 300 tar -C "$site" -xJf "$PCWEAK_OFFLINE_SITE"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # pcweak from this checkout, not installed
else
  PY=.venv/bin/python
  step setup 1200 bash scripts/setup.sh
fi

step environment 120 "$PY" -c "
import json, subprocess, torch, spconv
nvcc = subprocess.run(['nvcc', '--version'], capture_output=True, text=True).stdout.strip().splitlines()
print(json.dumps({'torch': torch.__version__, 'torch_cuda': torch.version.cuda, 'spconv': spconv.__version__,
                  'gpu': torch.cuda.get_device_name(0), 'nvcc': nvcc[-1] if nvcc else None}))"
step build_ops 600 env PCWEAK_OPS=compiled "$PY" -c "
import sys
from pcweak.ops.extension import compiled
m = compiled()
print('compiled ops with CUDA kernels:', bool(m.with_cuda()))
sys.exit(0 if m.with_cuda() else 1)"
step cuda_tests 600 "$PY" -m pytest -q -p no:cacheprovider -n 4 tests/test_ops.py tests/test_spconv_compat.py
step row_kernels 300 "$PY" -X faulthandler -m pytest -q -p no:cacheprovider -n 0 -s tests/test_spconv_compat.py -k "row_kernels"
run_dir=$(mktemp -d)
step fit_demo 600 "$PY" -m pcweak.cli fit --config configs/demo.yaml --trainer.accelerator gpu --trainer.max_epochs 2 \
  --data.init_args.synthetic_train 2 --data.init_args.synthetic_val 1 --data.init_args.cache_dir "$run_dir/cache" \
  --trainer.default_root_dir "$run_dir" --trainer.enable_progress_bar false
step fit_demo_16_mixed 600 "$PY" -m pcweak.cli fit --config configs/demo.yaml --trainer.accelerator gpu \
  --trainer.precision 16-mixed --trainer.max_epochs 1 --data.init_args.synthetic_train 2 \
  --data.init_args.synthetic_val 1 --data.init_args.cache_dir "$run_dir/cache" \
  --trainer.default_root_dir "$run_dir" --trainer.enable_progress_bar false
step fit_kitti 600 "$PY" -m pcweak.cli fit --config configs/kitti/clicks.yaml --trainer.accelerator gpu --trainer.max_epochs 1 \
  --data.init_args.dataset synthetic --data.init_args.synthetic_train 2 --data.init_args.synthetic_val 1 \
  --data.init_args.num_workers 0 --data.init_args.cache_dir "$run_dir/kcache" \
  --trainer.default_root_dir "$run_dir" --trainer.enable_progress_bar false
step fit_instance 600 "$PY" -m pcweak.cli fit --config configs/scannet/boxes.yaml --trainer.accelerator gpu \
  --trainer.max_epochs 1 --data.init_args.dataset synthetic --data.init_args.root null \
  --data.init_args.train_scenes null --data.init_args.val_scenes null --data.init_args.synthetic_train 2 \
  --data.init_args.synthetic_val 1 --data.init_args.num_workers 0 --data.init_args.batch_size 2 \
  --data.init_args.cache_dir "$run_dir/icache" --trainer.default_root_dir "$run_dir" --trainer.enable_progress_bar false
step bench_ops 600 "$PY" -m pcweak.cli bench ops --json --param device=cuda

"$PY" - "$LOG" "$RESULT" <<'PYEOF'
import json, pathlib, re, sys
log, result = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
steps = {}
for line in (log / "steps.txt").read_text().splitlines():
    name, rc, sec = line.split()
    steps[name] = ({"ok": True, "skipped": "PCWEAK_PYTHON given: the machine's own torch, no set-up"} if rc == "skipped"
                   else {"ok": rc == "0", "exit": int(rc), "seconds": int(sec)})
out = {"gpu_check": steps, "logs": str(result / "logs.tar.gz")}

def last_json(name):
    p = log / f"{name}.log"
    lines = p.read_text().strip().splitlines() if p.exists() else []
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None

out["environment"] = last_json("environment")
tests = (log / "cuda_tests.log").read_text() if (log / "cuda_tests.log").exists() else ""
out["cuda_tests"] = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", tests)}
b = last_json("bench_ops")
out["bench_ops"] = None if b is None else {k: b.get(k) for k in (
    "device", "backend", "ball_query_vs_ckdtree", "knn_vs_ckdtree", "scatter_max_vs_native_amax",
    "scatter_max_vs_torch_scatter", "voxelize_vs_torch_unique", "machine")}
fits = ("fit_demo", "fit_kitti", "fit_instance")
for name in fits:
    text = (log / f"{name}.log").read_text() if (log / f"{name}.log").exists() else ""
    out[name + "_gpu_used"] = "GPU available: True (cuda), used: True" in text
out["all_ok"] = all(s["ok"] for s in steps.values()) and all(out[f + "_gpu_used"] for f in fits)
(result / "gpu_check.json").write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out))
sys.exit(0 if out["all_ok"] else 1)
PYEOF
status=$?
tar -czf "$RESULT/logs.tar.gz" -C "$LOG" .
exit $status
