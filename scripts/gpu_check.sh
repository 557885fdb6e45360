#!/usr/bin/env bash
# The checks only a machine with an NVIDIA GPU can run (CI never runs this script):
#   1. the set-up's GPU path (CUDA torch, spconv-cu12x) and the CUDA op tests,
#   2. `pcweak bench ops` on the GPU,
#   3. a short `pcweak fit` of the demo config and of a KITTI config on the GPU.
# Prints one JSON object on stdout; logs go to $OUT (the device tool's output folder) or a
# temporary folder. Exit status 0 when every check passed.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${OUT:-$(mktemp -d)}
mkdir -p "$LOG"
export PCWEAK_GPU=1
PY=.venv/bin/python

step() {  # step NAME CMD...: run CMD, keep its log, remember status and seconds
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  echo "$name $rc $((SECONDS - t0))" >>"$LOG/steps.txt"
  return $rc
}
: >"$LOG/steps.txt"

step setup bash scripts/setup.sh
step cuda_tests $PY -m pytest -q -p no:cacheprovider tests/test_ops.py tests/test_spconv_compat.py -k "cuda or nvcc or spconv"
step bench_ops $PY -m pcweak.cli bench ops --json --param device=cuda
run_dir=$(mktemp -d)
step fit_demo $PY -m pcweak.cli fit --config configs/demo.yaml --trainer.accelerator gpu --trainer.max_epochs 2 \
  --data.init_args.synthetic_train 2 --data.init_args.synthetic_val 1 --data.init_args.cache_dir "$run_dir/cache" \
  --trainer.default_root_dir "$run_dir" --trainer.enable_progress_bar false
step fit_kitti $PY -m pcweak.cli fit --config configs/kitti/clicks.yaml --trainer.accelerator gpu --trainer.max_epochs 1 \
  --data.init_args.dataset synthetic --data.init_args.synthetic_train 2 --data.init_args.synthetic_val 1 \
  --data.init_args.num_workers 0 --data.init_args.cache_dir "$run_dir/kcache" --trainer.enable_progress_bar false

python3 - "$LOG" <<'EOF'
import json, pathlib, re, sys
log = pathlib.Path(sys.argv[1])
steps = {}
for line in (log / "steps.txt").read_text().splitlines():
    name, rc, sec = line.split()
    steps[name] = {"ok": rc == "0", "exit": int(rc), "seconds": int(sec)}
out = {"gpu_check": steps, "logs": str(log)}
tests = (log / "cuda_tests.log").read_text() if (log / "cuda_tests.log").exists() else ""
m = re.findall(r"(\d+) (passed|failed|skipped|deselected)", tests)
out["cuda_tests"] = {k: int(v) for v, k in m}
bench = (log / "bench_ops.log").read_text().strip().splitlines() if (log / "bench_ops.log").exists() else []
try:
    b = json.loads(next(l for l in reversed(bench) if l.startswith("{")))
    out["bench_ops"] = {k: b.get(k) for k in ("device", "backend", "ball_query_vs_ckdtree", "knn_vs_ckdtree",
                                               "scatter_max_vs_native_amax", "scatter_max_vs_torch_scatter",
                                               "voxelize_vs_torch_unique", "machine")}
except StopIteration:
    out["bench_ops"] = None
for name in ("fit_demo", "fit_kitti"):
    text = (log / f"{name}.log").read_text() if (log / f"{name}.log").exists() else ""
    out[name + "_gpu_used"] = "GPU available: True (cuda), used: True" in text
out["all_ok"] = all(s["ok"] for s in steps.values())
print(json.dumps(out))
sys.exit(0 if out["all_ok"] else 1)
EOF
