#!/usr/bin/env bash
# One-shot set-up used by `make demo` and `make test`: system libraries that Open3D needs (and
# what a bare Debian's Python lacks: venv, a C++ compiler, Python's headers), a virtual
# environment in .venv, PyTorch (without a GPU, its CPU build where the index has one), and pcweak.
# Idempotent: a second run only checks. Environment knobs:
#   PCWEAK_GPU=1|0          force the GPU / CPU install path (default: GPU iff nvidia-smi works)
#   PCWEAK_SPCONV=spconv-cu126   spconv wheel for the GPU path (default spconv-cu126: wheels for
#                           Python 3.11 and 3.12; ran on an H200 with a CUDA 13 driver)
#   PCWEAK_TORCH_INDEX=URL  extra index for torch wheels (e.g. PyTorch's CPU index off this network)
#   PCWEAK_SKIP_APT=1       never call apt-get (Open3D features then skip with a clear reason)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

# What Open3D's wheel links (pcweak.open3d_lib.OPEN3D_SYSTEM_PACKAGES, kept in step by a test):
# libEGL for any import (a bare Debian lacks it), libusb, Vulkan with Mesa's drivers for offscreen
# rendering, OpenMP. xvfb + xdotool: the interactive window runs and is tested under a virtual X server
apt_packages=(libegl1 libusb-1.0-0 libvulkan1 mesa-vulkan-drivers libgomp1 xvfb xdotool)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A bare Debian's Python lacks what the set-up needs of it: venv's ensurepip (python3.X-venv), and
# for pcweak's C++ ops a C++ compiler and Python's headers (python3.X-dev). Asked of the Python
# that runs the set-up, so a Python not from apt (pyenv, conda) asks nothing of apt here.
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -c "import ensurepip" 2>/dev/null; then missing+=("python$pyver-venv"); fi
"$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=("python$pyver-dev")
command -v c++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ] && [ "${PCWEAK_SKIP_APT:-0}" != 1 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    echo "[setup] installing system packages with sudo: ${missing[*]}"
    sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] WARNING: missing system packages ${missing[*]}; without them Open3D viewing/rendering (or a venv, or pcweak's C++ ops) will be unavailable" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.pcweak-installed"
want="$(cat pyproject.toml setup.py scripts/setup.sh | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment up to date ($VENV)"; exit 0
fi

gpu=${PCWEAK_GPU:-}
if [ -z "$gpu" ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then gpu=1; else gpu=0; fi
fi
extra=()
[ -n "${PCWEAK_TORCH_INDEX:-}" ] && extra=(--extra-index-url "$PCWEAK_TORCH_INDEX")
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 ($([ "$gpu" = 1 ] && echo 'a GPU is present' || echo 'no GPU: the CPU build where the index has one'))"
  $PIP install -q --no-compile "${extra[@]}" torch==2.13.0
fi
if [ "$gpu" = 1 ]; then
  $PIP install -q --no-compile -e ".[dev,models,las,e57]" "${PCWEAK_SPCONV:-spconv-cu126}"
else
  $PIP install -q --no-compile -e ".[dev,cpu,models,las,e57]"
fi
# Byte-compile once, on every core: pip compiles file by file on one core (about 80 s of a
# 3-minute install on 2 cores), and where PYTHONDONTWRITEBYTECODE is set nothing compiled later is
# kept, so every process would compile torch again. pcweak itself is compiled too (an editable
# install is not). -qq and `|| true` as pip does: a few packages ship files that are not Python 3
# (templates, examples), which pip skips without failing.
# Beside it the C++ ops are built into pcweak's cache (~/.cache/pcweak or $PCWEAK_CACHE), so the
# first pcweak command does not stop to compile them (about 40 s on 2 cores alone). A failed
# build is not fatal (it is tried with PCWEAK_OPS=compiled so that it fails loudly here): pcweak
# then warns and uses its pure-torch reference ops.
echo "[setup] byte-compiling the environment and building pcweak's C++ ops (log: $VENV/ops-build.log)"
PCWEAK_OPS=compiled "$VENV/bin/python" -c "from pcweak.ops.extension import backend; print('ops:', backend())" \
  > "$VENV/ops-build.log" 2>&1 &
ops_build=$!
mapfile -t site < <("$VENV/bin/python" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' | sort -u)
"$VENV/bin/python" -m compileall -qq -j 0 "${site[@]}" pcweak || true
if wait "$ops_build"; then
  echo "[setup] $(tail -n 1 "$VENV/ops-build.log")"
else
  echo "[setup] WARNING: building the C++ ops failed (see $VENV/ops-build.log); pcweak will use its reference ops" >&2
fi
echo "$want" > "$stamp"
echo "[setup] done: $($VENV/bin/python -c 'import torch;print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
