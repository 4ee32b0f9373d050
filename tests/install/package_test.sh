#!/usr/bin/env bash
# The Debian package: `cpack` builds it from BUILD_DIR, lintian finds no
# errors in it, every dependency it declares is a Debian package (installed
# here or known to apt), and the package unpacked into a throw-away root
# (dpkg -x) works there: its xesvm
# runs, an out-of-tree project builds against it with find_package and with
# pkg-config, and `xesvm run` starts ZE_APP (an application linking only the
# Level Zero loader) on the packaged driver, which moves bytes correctly.
#
#   package_test.sh BUILD_DIR SOURCE_DIR [ZE_APP]
# Exits 77 (skipped, saying why) without dpkg-deb.
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) ze_app=${3:-}
work=$build/package-test
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
command -v dpkg-deb > /dev/null || { echo "SKIP: dpkg-deb not found (not a Debian system)"; exit 77; }
command -v lintian > /dev/null || fail "lintian not found (scripts/deps.sh installs it)"

rm -rf "$work"; mkdir -p "$work"
(cd "$build" && cpack -G DEB -B "$work" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack -G DEB"; }
deb=$(find "$work" -maxdepth 1 -name 'xesvm_*.deb' | head -1)
[ -n "$deb" ] || fail "cpack made no xesvm_*.deb"
ok "cpack made $(basename "$deb")"

dpkg-deb --contents "$deb" > "$work/contents"
for f in ./usr/bin/xesvm ./usr/include/xesvm/xesvm.hpp ./usr/share/doc/xesvm/copyright \
         ./usr/share/doc/xesvm/changelog.gz ./usr/share/man/man1/xesvm.1.gz; do
  grep -q " $f\$" "$work/contents" || fail "package lacks $f"
done
grep -qE ' \./usr/lib/(x86_64-linux-gnu/)?xesvm/libze_xesvm\.so$' "$work/contents" || fail "package lacks the Level Zero driver"
if [ -f "$build/level-zero/xesvm-spirv-translate" ]; then
  grep -q ' \./usr/libexec/xesvm/xesvm-spirv-translate$' "$work/contents" ||
    fail "package lacks the SPIR-V translator program (./usr/libexec/xesvm/xesvm-spirv-translate)"
fi
! grep -q 'libze_intel' "$work/contents" || fail "package ships a file named like Intel's driver"
grep -qE ' \./usr/lib/(x86_64-linux-gnu/)?libxesvm\.so\.[0-9.]+ ' "$work/contents" || fail "package lacks libxesvm.so.<version>"
ok "contents: tool, headers, libraries, driver in a private directory, docs"

depends=$(dpkg-deb -f "$deb" Depends)
[ -n "$depends" ] || fail "the package declares no dependencies (dpkg-shlibdeps did not run?)"
for d in $(tr ',|' '\n\n' <<< "$depends" | sed 's/(.*//; s/ //g' | sort -u); do
  dpkg-query -W "$d" > /dev/null 2>&1 || apt-cache show "$d" > /dev/null 2>&1 ||
    fail "dependency '$d' is neither installed here nor known to apt"
done
ok "dependencies are Debian packages: $depends"

lintian --no-tag-display-limit --display-info "$deb" > "$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
if grep -q '^E: ' "$work/lintian.log"; then fail "lintian reports errors (above)"; fi
ok "lintian: no errors ($(grep -c '^[WI]: ' "$work/lintian.log" || true) warnings/infos, listed above)"

root=$work/root
dpkg -x "$deb" "$root"
xesvm=$root/usr/bin/xesvm
"$xesvm" --version | grep -qx "xesvm [0-9.]*" || fail "packaged xesvm --version"
"$xesvm" info -b sim:vram=16M --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["capabilities"]["device_memory_bytes"]==16<<20' ||
  fail "packaged xesvm info --json"
ok "packaged xesvm runs from the throw-away root"

lib=$(dirname "$(find "$root/usr/lib" -name 'libxesvm.so.*.*' -type f | head -1)")
b=$work/consumer; rm -rf "$b"
cmake -S "$src/tests/install/consumer" -B "$b" -G Ninja -DCMAKE_PREFIX_PATH="$root/usr" > "$b.log" 2>&1 &&
  cmake --build "$b" >> "$b.log" 2>&1 || { cat "$b.log"; fail "find_package consumer against the package"; }
"$b/consumer" || fail "find_package consumer against the package"
PKG_CONFIG_PATH=$lib/pkgconfig
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
c++ -std=c++20 -o "$work/pc_consumer" "$src/tests/install/consumer/consumer.cpp" $(pkg-config --cflags --libs xesvm)
LD_LIBRARY_PATH=$lib "$work/pc_consumer" || fail "pkg-config consumer against the package"
ok "consumers build against the package (find_package, pkg-config) and move bytes"

if [ -n "$ze_app" ]; then
  uri="sim:vram=32M,workers=2"
  out=$("$xesvm" run -b "$uri" -- "$ze_app" "$uri" $((32 << 20))) || { echo "$out"; fail "packaged xesvm run -- ze_app"; }
  echo "$out"; grep -q '^ze_app: ok' <<< "$out" || fail "ze_app on the packaged driver"
  driver=$("$xesvm" run --dry-run --json -- true | python3 -c 'import json,sys; print(json.load(sys.stdin)["driver"])')
  [[ "$driver" == "$root"/* ]] || fail "packaged xesvm run used $driver, not the packaged driver"
  samples=$(dirname "$(find "$root" -name ze_vector_add -type f | head -1)")
  out=$("$xesvm" run -b "sim:vram=16M" -- "$samples/ze_vector_add" 65536) || { echo "$out"; fail "packaged sample ze_vector_add"; }
  grep -q 'OK$' <<< "$out" || fail "packaged sample ze_vector_add: $out"
  ok "xesvm run starts a loader-only application and the packaged sample on the packaged driver"
fi
