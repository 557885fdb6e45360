#!/usr/bin/env bash
# Pack the Python packages that a GPU machine with no package registry lacks into one tarball,
# for `PCWEAK_OFFLINE_SITE=<tarball> PCWEAK_PYTHON=python3 bash scripts/gpu_check.sh` there.
# Run it where pip reaches PyPI. The machine's own Python must already hold a CUDA torch,
# numpy, scipy, lightning, gpytorch, scikit-learn, pytest and the packages spconv builds on
# (pybind11, ninja, portalocker, requests). Wheels are unpacked rather than installed: pure-Python
# and manylinux wheels are importable as unpacked, and xz packs the result ~40% smaller than the
# wheels (spconv's one library is 284 MB: 70 MB as a wheel, 41 MB with cumm here).
#   usage: scripts/offline_site.sh OUT.tar.xz [PYTHON_VERSION, default 3.12]
#   PCWEAK_SPCONV=spconv-cu126==2.3.8 PCWEAK_CUMM=cumm-cu126==0.7.11 choose the CUDA wheels.
set -euo pipefail
out=${1:?usage: scripts/offline_site.sh OUT.tar.xz [PYTHON_VERSION]}
pyver=${2:-3.12}
case "$out" in *.tar.xz) ;; *) echo "offline_site.sh: $out: the output must end in .tar.xz" >&2; exit 2;; esac
packages=("${PCWEAK_SPCONV:-spconv-cu126==2.3.8}" "${PCWEAK_CUMM:-cumm-cu126==0.7.11}" pccm==0.4.16
  ccimport==0.4.4 fire==0.7.1 lark==1.3.1 termcolor==3.3.0 plyfile==1.1.5 jsonargparse==4.53.0
  docstring_parser==0.18.0 typeshed_client==2.15.0 tensorboardX==2.6.5)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
echo "[offline-site] downloading ${#packages[@]} wheels for CPython $pyver"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  "${platforms[@]}" -d "$work/wheels" "${packages[@]}"
mkdir "$work/site"
for w in "$work"/wheels/*.whl; do
  python3 -m zipfile -e "$w" "$work/site"
done
echo "[offline-site] packing $(du -sh "$work/site" | cut -f1) into $out"
tar -C "$work/site" -cf - . | xz -9 -T0 > "$work/site.tar.xz"
mv "$work/site.tar.xz" "$out"
echo "[offline-site] done: $out ($(du -h "$out" | cut -f1))"
