#!/usr/bin/env bash
# Installs every Debian package xesvm needs, for user space and for the
# kernel harness. Idempotent: packages already present are left alone and
# `apt-get update` runs at most once per invocation (and only when something
# is missing).
set -euo pipefail

PACKAGES=(
  # user-space build
  build-essential cmake ninja-build pkg-config git
  libtbb-dev libgtest-dev libgmock-dev libbenchmark-dev libdrm-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libabsl-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  # Level Zero loader (the real one) for the Level Zero driver and its tests
  libze1 libze-dev
  # Level Zero driver: work groups as fibers (Boost.Context); SPIR-V modules
  # (spirv-tools validation, SPIRV-LLVM-Translator, LLVM 15 ORC JIT) and the
  # OpenCL C test kernels compiled to SPIR-V at build time
  libboost-context-dev spirv-tools llvm-15-dev libllvmspirvlib-15-dev clang-15 llvm-spirv-15
  # kernel series harness
  linux-source-6.12 qemu-system-x86 busybox-static
  bc bison flex libelf-dev libssl-dev dwarves cpio xz-utils kmod rsync sparse
  # benchmark comparison scripts, the install and command-line tests
  python3
  # `xesvm stress --plot` / `xesvm plot`
  gnuplot-nox
  # the Debian package: cpack's dpkg-shlibdeps, and lintian in its test
  dpkg-dev lintian
  # igt-tests/: IGT's framework library libigt.so.0 (Debian ships no headers)
  intel-gpu-tools
  # runtime: profiling the fault paths (bench/README.md, `perf record -g`)
  linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
