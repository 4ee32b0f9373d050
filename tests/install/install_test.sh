#!/usr/bin/env bash
# Install and consume tests of xesvm. Each mode is one ctest entry
# (tests/install/install_tests.cmake):
#
#   install_test.sh MODE BUILD_DIR SOURCE_DIR [ZE_APP]
#
#   tree        `cmake --install` into BUILD_DIR/install-test/prefix, then
#               moves the tree (every installed path must be prefix-relative)
#               and checks what is there: headers, libxesvm.so with its
#               versioned SONAME and libxesvm.a, the CMake package, xesvm.pc,
#               bin/xesvm, the Level Zero driver under its own name
#   cmake       an out-of-tree project: find_package(xesvm CONFIG), links
#               xesvm::xesvm (C++ and C programs), builds and runs them
#   cmake-static  the same with xesvm::xesvm_static; no libxesvm.so needed
#   pkg-config  the same programs built with `pkg-config --cflags --libs xesvm`
#   run-build   `xesvm run` from the build tree starts ZE_APP (links only the
#               loader) on the build tree's driver
#   run-installed  the same from the installed (moved) tree
#
# Every mode prints what it checks and exits non-zero on the first failure.
set -euo pipefail
mode=$1 build=$(cd "$2" && pwd) src=$(cd "$3" && pwd) ze_app=${4:-}
work=$build/install-test
prefix=$work/moved-prefix   # where `tree` leaves the installed tree

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
libdir_of() {  # the installed tree's library directory (lib or lib/<multiarch>)
  local d
  d=$(dirname "$(find "$1" -name 'libxesvm.so.*.*' -type f | head -1)")
  [ -n "$d" ] && [ "$d" != . ] || fail "no libxesvm.so.* under $1"
  echo "$d"
}

case "$mode" in
tree)
  rm -rf "$work"; mkdir -p "$work"
  cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
  mv "$work/prefix" "$prefix"
  lib=$(libdir_of "$prefix")
  for h in xesvm.hpp xesvm.h ze_kernel.h; do
    [ -f "$prefix/include/xesvm/$h" ] || fail "header include/xesvm/$h not installed"
  done; ok "headers"
  real=$(find "$lib" -maxdepth 1 -name 'libxesvm.so.*.*.*' -type f | head -1)
  [ -n "$real" ] || fail "no versioned libxesvm.so.X.Y.Z in $lib"
  soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [[ "$soname" =~ ^libxesvm\.so\.[0-9]+(\.[0-9]+)?$ ]] || fail "SONAME of $real is '$soname', expected libxesvm.so.<version>"
  [ -L "$lib/$soname" ] && [ -L "$lib/libxesvm.so" ] || fail "symlinks $soname and libxesvm.so missing in $lib"
  ok "shared library $(basename "$real"), SONAME $soname"
  [ -f "$lib/libxesvm.a" ] || fail "libxesvm.a not installed"
  syms=$(nm -C "$lib/libxesvm.a" 2>/dev/null)
  grep -q 'T xesvm::Runtime::Runtime' <<< "$syms" || fail "libxesvm.a has no xesvm::Runtime"
  syms=$(nm -D "$real")
  grep -q ' T xesvm_open$' <<< "$syms" || fail "libxesvm.so does not export the C API (xesvm_open)"
  ok "static library with the runtime, shared library with the C API"
  [ -f "$lib/cmake/xesvm/xesvmConfig.cmake" ] && [ -f "$lib/cmake/xesvm/xesvmConfigVersion.cmake" ] ||
    fail "CMake package files missing in $lib/cmake/xesvm"
  [ -f "$lib/pkgconfig/xesvm.pc" ] || fail "xesvm.pc missing in $lib/pkgconfig"
  ok "CMake package and pkg-config file"
  [ -x "$prefix/bin/xesvm" ] || fail "bin/xesvm not installed"
  "$prefix/bin/xesvm" --version | grep -qx "xesvm [0-9.]*" || fail "installed xesvm --version: $("$prefix/bin/xesvm" --version)"
  dyn=$(readelf -d "$prefix/bin/xesvm")
  ! grep -q "$build" <<< "$dyn" || fail "bin/xesvm refers to the build tree"
  ok "bin/xesvm runs from the moved tree"
  if [ -f "$build/level-zero/libze_xesvm.so" ]; then
    [ -f "$lib/xesvm/libze_xesvm.so" ] || fail "Level Zero driver not at $lib/xesvm/libze_xesvm.so"
    shadow=$(find "$prefix" -name 'libze_intel*' -o -name 'libze_loader*' | head -1)
    [ -z "$shadow" ] || fail "installed $shadow: it would shadow the system's Level Zero files"
    [ ! -e "$lib/libze_xesvm.so" ] || fail "the driver is on the library path ($lib)"
    ok "Level Zero driver in $lib/xesvm under its own name, nothing named like Intel's"
  fi
  if [ -f "$build/level-zero/xesvm-spirv-translate" ]; then
    [ -x "$prefix/libexec/xesvm/xesvm-spirv-translate" ] ||
      fail "the SPIR-V translator program is not at $prefix/libexec/xesvm/xesvm-spirv-translate (the driver looks there)"
    ok "SPIR-V translator program in libexec/xesvm, where the installed driver looks for it"
  fi
  ;;
cmake | cmake-static)
  [ -d "$prefix" ] || fail "no installed tree at $prefix (the install.tree test sets it up)"
  static=OFF; [ "$mode" = cmake-static ] && static=ON
  b=$work/consumer-$mode; rm -rf "$b"
  cmake -S "$src/tests/install/consumer" -B "$b" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DXESVM_CONSUMER_STATIC=$static > "$b.log" 2>&1 || { cat "$b.log"; fail "configuring the consumer"; }
  cmake --build "$b" >> "$b.log" 2>&1 || { cat "$b.log"; fail "building the consumer"; }
  dyn=$(readelf -d "$b/consumer")
  if [ "$static" = ON ]; then
    ! grep -q 'libxesvm\.so' <<< "$dyn" || fail "the static consumer needs libxesvm.so"
  else
    grep -q 'NEEDED.*libxesvm\.so\.' <<< "$dyn" || fail "the consumer does not link libxesvm.so.<version>"
  fi
  "$b/consumer" || fail "consumer"
  "$b/consumer_c" || fail "consumer_c"
  ok "find_package(xesvm) consumer ($mode) builds and moves bytes"
  ;;
pkg-config)
  [ -d "$prefix" ] || fail "no installed tree at $prefix (the install.tree test sets it up)"
  lib=$(libdir_of "$prefix")
  export PKG_CONFIG_PATH=$lib/pkgconfig
  pkg-config --modversion xesvm | grep -qx "[0-9]*\.[0-9]*\.[0-9]*" || fail "pkg-config --modversion xesvm"
  [ "$(pkg-config --variable=includedir xesvm)" -ef "$prefix/include" ] || fail "includedir is not the moved tree's"
  pkg-config --static --libs xesvm | grep -q -- '-ltbb' || fail "pkg-config --static --libs has no -ltbb"
  [ -f "$(pkg-config --variable=ze_driver xesvm)" ] || [ ! -f "$build/level-zero/libze_xesvm.so" ] ||
    fail "pkg-config ze_driver variable does not name the installed driver"
  b=$work/consumer-pc; rm -rf "$b"; mkdir -p "$b"
  # shellcheck disable=SC2046
  c++ -std=c++20 -o "$b/consumer" "$src/tests/install/consumer/consumer.cpp" $(pkg-config --cflags --libs xesvm)
  # shellcheck disable=SC2046
  cc -o "$b/consumer_c" "$src/tests/install/consumer/consumer_c.c" $(pkg-config --cflags --libs xesvm)
  LD_LIBRARY_PATH=$lib "$b/consumer" || fail "pkg-config consumer"
  LD_LIBRARY_PATH=$lib "$b/consumer_c" || fail "pkg-config consumer_c"
  ok "pkg-config consumer builds and moves bytes"
  ;;
run-build | run-installed)
  [ -x "$ze_app" ] || fail "no ze_app given"
  if [ "$mode" = run-build ]; then xesvm=$build/tools/xesvm; else
    [ -d "$prefix" ] || fail "no installed tree at $prefix (the install.tree test sets it up)"
    xesvm=$prefix/bin/xesvm; fi
  uri="sim:vram=32M,workers=2"
  # A stale variable from the caller must not decide the driver or backend.
  out=$(ZE_ENABLE_ALT_DRIVERS=/nonexistent/libze_intel_gpu.so.1 XESVM_BACKEND=sim:vram=8M \
        "$xesvm" run -b "$uri" -- "$ze_app" "$uri" $((32 << 20))) || { echo "$out"; fail "xesvm run -b $uri -- ze_app"; }
  echo "$out"; grep -q "^ze_app: ok" <<< "$out" || fail "ze_app did not report ok"
  # XESVM_BACKEND chooses the backend when -b is not given.
  out=$(XESVM_BACKEND="sim:vram=16M,workers=2" "$xesvm" run -- "$ze_app" "sim:vram=16M,workers=2" $((16 << 20))) ||
    { echo "$out"; fail "XESVM_BACKEND=... xesvm run -- ze_app"; }
  grep -q "^ze_app: ok" <<< "$out" || fail "ze_app did not report ok with XESVM_BACKEND"
  # The application's exit status is the command's; a missing one is 127.
  set +e
  "$xesvm" run -- sh -c 'exit 7'; rc=$?
  "$xesvm" run -- /nonexistent/app 2>/dev/null; rc2=$?
  "$xesvm" run --driver /nonexistent/libze_xesvm.so -- true 2>/dev/null; rc3=$?
  set -e
  [ $rc -eq 7 ] || fail "xesvm run -- sh -c 'exit 7' exited $rc"
  [ $rc2 -eq 127 ] || fail "xesvm run of a missing program exited $rc2, expected 127"
  [ $rc3 -eq 4 ] || fail "xesvm run with a missing driver exited $rc3, expected 4"
  driver=$("$xesvm" run --dry-run --json -- true | python3 -c 'import json,sys; print(json.load(sys.stdin)["driver"])')
  case "$mode" in
    run-build) [ "$driver" -ef "$build/level-zero/libze_xesvm.so" ] || fail "build-tree xesvm run uses $driver" ;;
    run-installed) [[ "$driver" == "$prefix"/* ]] || fail "installed xesvm run uses $driver, not the installed driver" ;;
  esac
  ok "xesvm run ($mode) starts a loader-only application on the xesvm device ($driver)"
  ;;
*) fail "unknown mode '$mode'; expected tree, cmake, cmake-static, pkg-config, run-build or run-installed" ;;
esac
