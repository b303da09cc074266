#!/usr/bin/env bash
# An emulated 64-bit "Raspberry Pi 3B+" for proving the ARM path without the board:
# a Debian bookworm arm64 root with python3, numpy and onnxruntime (aarch64 wheels from
# PyPI), run by qemu-user as a Cortex-A53. Needs root (debootstrap), network to the Debian
# mirror and PyPI, and ~250 MB. Emulation is hundreds of times slower than the board: useless for latency,
# good for "the agent and the model run on aarch64 ONNX Runtime".
#
#   sudo bash deploy/emulate/make_aarch64_root.sh /opt/pi3-root
#   edgeprune deploy runs/r56-pruned --device rpi3 --host me@127.0.0.1 \
#       --remote-python /opt/pi3-root/python-aarch64 --compare-dense --out runs/deploy-qemu
#
# Re-running is cheap: finished steps are skipped.
set -euo pipefail
ROOT=$(realpath -m "${1:?usage: make_aarch64_root.sh ROOT}")
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)

need() { command -v "$1" >/dev/null || { echo "error: $1 not found (apt-get install $2)" >&2; exit 2; }; }
need debootstrap debootstrap
need qemu-aarch64-static qemu-user-static
need dpkg-deb dpkg

if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  # --foreign only downloads and unpacks the essential set; the packages asked for with
  # --include are downloaded too, and unpacked here without running their scripts (no chroot,
  # no binfmt_misc needed).
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3-minimal,libpython3.11-stdlib "$SUITE" "$ROOT" "$MIRROR"
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
fi

SITE="$ROOT/opt/edgeprune-site"
if [ ! -d "$SITE/onnxruntime" ]; then
  "$PY" -m pip install -q --target "$SITE" --python-version 3.11 --implementation cp \
    --platform manylinux2014_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_28_aarch64 --only-binary=:all: numpy onnxruntime
fi

# ONNX Runtime reads /proc/cpuinfo and the CPU sysfs at import; qemu-user would show it the
# x86 host's, and it crashes. Give it a Pi 3B+'s (qemu -L looks under ROOT first).
"$PY" "$HERE/fake_pi3_sysfs.py" "$ROOT"

cat > "$ROOT/python-aarch64" <<WRAP
#!/bin/sh
# python3 of the emulated aarch64 root (qemu-user, Cortex-A53)
exec qemu-aarch64-static -cpu cortex-a53 -L "$ROOT" -E PYTHONPATH="$SITE" "$ROOT/usr/bin/python3.11" "\$@"
WRAP
chmod +x "$ROOT/python-aarch64"
"$ROOT/python-aarch64" -c "import platform, onnxruntime; print('aarch64 root ready:', platform.machine(), 'onnxruntime', onnxruntime.__version__)"
echo "remote python: $ROOT/python-aarch64"
