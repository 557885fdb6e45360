#!/usr/bin/env bash
# The README's set-up on a bare Debian, as a new user's machine has it (CI never runs this
# script: it needs root, debootstrap and a Debian mirror). It makes a minimal Debian (bookworm,
# or DEBIAN_SUITE=trixie) in a folder (debootstrap --variant=minbase), installs there only what
# the README presupposes (python3, git, make), clones this checkout's HEAD into it and runs, in a
# chroot, the README's command: `make test` (or the command given as arguments, run in the
# clone). The host's own packages, ninja and libraries are out of reach, so a set-up step that
# only works because this machine happens to carry something fails here.
#
#   bash scripts/bare_debian_check.sh [DIR] [-- COMMAND...]    (default DIR: a temporary folder)
#
# What a closed network needs passes through: PIP_* settings in the environment, the pip
# configuration in /etc/pip.conf and /etc/xdg/pip, extra CA certificates in
# /usr/local/share/ca-certificates, and the folders that PIP_FIND_LINKS names (bound read-only),
# and so do /opt/pypi* package indexes where they exist. Exit status: the command's.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$(pwd)
ROOT=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then ROOT=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
ROOT=$(realpath -m "${ROOT:-$(mktemp -d /var/tmp/pcweak-bare-debian.XXXXXX)}")
CMD=${*:-make test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}
[ "$(id -u)" = 0 ] || { echo "bare_debian_check: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind HOST_PATH: the same path inside the chroot
  mkdir -p "$ROOT$1"
  mount --bind "$1" "$ROOT$1"
  mounts+=("$ROOT$1")
}

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  echo "[bare-debian] debootstrap $SUITE (minbase) into $ROOT"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1
fi
cp /etc/resolv.conf "$ROOT/etc/"
for d in /proc /sys /dev /dev/pts; do bind "$d"; done
for f in /etc/pip.conf /etc/xdg/pip; do [ -e "$f" ] && mkdir -p "$ROOT$(dirname "$f")" && cp -r "$f" "$ROOT$(dirname "$f")/"; done
for d in ${PIP_FIND_LINKS:-} /opt/pypi /opt/pypi-more; do [ -d "$d" ] && bind "$d"; done
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/* "$ROOT/usr/local/share/ca-certificates/"
fi
# the host's mirror (a snapshot, a proxy), where it serves the same suite
if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -q "^Suites: $SUITE\b" /etc/apt/sources.list.d/debian.sources; then
  cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/" && rm -f "$ROOT/etc/apt/sources.list"
fi

in_root() {  # a clean environment: nothing of the host's but the pip settings
  local vars=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive)
  while IFS= read -r kv; do vars+=("$kv"); done < <(env | grep '^PIP_' || true)
  chroot "$ROOT" /usr/bin/env -i "${vars[@]}" bash -c "$1"
}
echo "[bare-debian] what the README presupposes: python3, git, make"
in_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 git make ca-certificates >/dev/null \
  && update-ca-certificates >/dev/null 2>&1; python3 --version"
rm -rf "$ROOT/root/pcweak"
git clone -q "$CHECKOUT" "$ROOT/root/pcweak"
echo "[bare-debian] $(git -C "$ROOT/root/pcweak" log --oneline -1): $CMD"
set +e
in_root "cd /root/pcweak && $CMD"
rc=$?
echo "[bare-debian] rc=$rc ($ROOT)"
exit $rc
