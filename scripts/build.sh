#!/usr/bin/env bash
# Builds one configuration of xesvm into build/<config>.
#   scripts/build.sh release | asan | tsan
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-release}"
jobs="${JOBS:-$(nproc)}"
case "$config" in
  release) flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DXESVM_SANITIZE=address;undefined" -DXESVM_BUILD_BENCH=OFF) ;;
  tsan)    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DXESVM_SANITIZE=thread -DXESVM_BUILD_BENCH=OFF) ;;
  *) echo "build.sh: unknown configuration '$config'; expected release, asan or tsan" >&2; exit 2 ;;
esac
mkdir -p build
cmake -S . -B "build/$config" -G Ninja "${flags[@]}" > "build/$config.configure.log" 2>&1 || {
  mkdir -p build; cat "build/$config.configure.log" >&2; exit 1; }
cmake --build "build/$config" -j "$jobs"
