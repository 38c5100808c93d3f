#!/usr/bin/env bash
# Build (or reuse) a Debian bookworm sysroot for one board's CPU, from Debian packages only.
#
#   eval/board/sysroot.sh armhf|arm64 OUT_DIR
#
# mmdebstrap --variant=extract unpacks the listed packages and their dependencies without
# running any maintainer script (nothing foreign is executed while building). The result is
# cached: OUT_DIR/.snapseal-sysroot holds the package list it was made from, and a second run
# with the same list does nothing. The guest runs under qemu-user with `-L OUT_DIR`.
#
# The package set is what a board image provides from its distribution (interpreter, numpy,
# OpenCV, PyNaCl) plus what the test suite and the emulation backend need on a CPU that PyPI
# has no wheels for (onnx, protobuf, pytest, hypothesis).
set -Eeuo pipefail

arch=${1:?usage: sysroot.sh armhf|arm64 OUT_DIR}
out=${2:?usage: sysroot.sh armhf|arm64 OUT_DIR}
case $arch in armhf | arm64) ;; *) echo "sysroot.sh: unknown architecture '$arch' (armhf or arm64)" >&2; exit 2 ;; esac

packages=(
    python3 python3-venv python3-pip-whl python3-setuptools-whl
    python3-numpy python3-opencv python3-nacl
    python3-onnx python3-protobuf
    python3-pytest python3-hypothesis python3-tqdm python3-attr
)
wanted="bookworm $arch ${packages[*]}"
stamp=$out/.snapseal-sysroot
if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
    echo "sysroot.sh: $out is up to date ($arch)"
    exit 0
fi
command -v mmdebstrap >/dev/null || { echo "sysroot.sh: mmdebstrap not found (apt-get install mmdebstrap)" >&2; exit 2; }
rm -rf -- "$out" "$out.partial"
mkdir -p -- "$(dirname "$out")"
include=$(IFS=,; echo "${packages[*]}")
mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$include" bookworm "$out.partial"
# extract runs no maintainer scripts: add what they would have made and the guest needs.
ln -sfn python3.11 "$out.partial/usr/bin/python3"
mkdir -p "$out.partial/tmp" && chmod 1777 "$out.partial/tmp"
# update-alternatives would link the BLAS/LAPACK that numpy loads by its generic soname.
for lib in "$out.partial"/usr/lib/*-linux-gnu*/{blas,lapack}/lib*.so.3; do
    [[ -e $lib ]] || continue
    ln -sfn "$(basename "$(dirname "$lib")")/$(basename "$lib")" "$(dirname "$(dirname "$lib")")/$(basename "$lib")"
done
echo "$wanted" >"$out.partial/.snapseal-sysroot"
mv -- "$out.partial" "$out"
echo "sysroot.sh: built $out ($arch, $(du -sh "$out" | cut -f1))"
