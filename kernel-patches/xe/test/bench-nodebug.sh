#!/usr/bin/env bash
# Benchmark on a kernel without KASAN, SLUB debugging, lockdep and DEBUG_VM
# (same series, same config otherwise, the software Xe device included):
# the GPU fault and eviction figures of xe-soft-bench and hmm-evict-bench.
# Run after run.sh, which prepares the patched tree:
#   bash kernel-patches/xe/test/bench-nodebug.sh [--build-only]
# (--build-only: build the kernel now, boot it by a later call)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${XESVM_CACHE:-/var/cache/xesvm}/kernel
pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
psrc=$cache/src-$pkgver-patched
[ -f "$psrc/.xesvm-series" ] || { echo "run run.sh first"; exit 1; }
# Build from a snapshot of the patched tree (mtimes kept, so the build is
# incremental): run.sh may re-apply the series to its tree meanwhile.
nsrc=$cache/src-$pkgver-nodebug
if command -v rsync >/dev/null; then
	rsync -a --delete "$psrc/" "$nsrc/"
else
	rm -rf "$nsrc" && cp -a "$psrc" "$nsrc"
fi
psrc=$nsrc
frag=$(mktemp)
# the patched kernel's configuration (DRM and the software Xe device
# included) without the checkers
cat "$here/config.fragment" "$here/config.patched.fragment" "$here/config.nodebug.fragment" | grep -v -e '^CONFIG_PROVE_LOCKING=' -e '^CONFIG_DEBUG_VM=' -e '^CONFIG_DEBUG_ATOMIC_SLEEP=' \
	-e '^CONFIG_KASAN' -e '^CONFIG_SLUB_DEBUG_ON=' -e '^CONFIG_SLUB_RCU_DEBUG=' >"$frag"
h=$( (echo "$pkgver"; cat "$frag" "$here/kbuild.sh") | sha256sum | cut -c1-16)
out=$cache/patched-nodebug-$h
bash "$here/kbuild.sh" "$psrc" "$out" "$frag" bzImage
rm -f "$frag"
# bench.sh builds xe-soft-bench in the guest against these uapi headers
make -s -C "$psrc" O="$out" headers_install >/dev/null
[ "${1:-}" = --build-only ] && { echo "built $out"; exit 0; }
d=$out/bench
rm -rf "$d"; mkdir -p "$d"
gcc -O2 -Wall -I"$psrc" -o "$d/hmm-evict-bench" "$here/hmm-evict-bench.c" -lpthread
echo "1800 bench $here/bench.sh $d" >"$d/plan"
timeout -s KILL 1800 qemu-system-x86_64 -m 2G -smp 2 -display none -vga none -monitor none -no-reboot \
	-kernel "$out/arch/x86/boot/bzImage" \
	-append "console=ttyS0 root=rootfs rootfstype=9p rootflags=trans=virtio,version=9p2000.L ro init=$here/guest-init.sh panic=-1 movablecore=512M XESVM_PLAN=$d/plan" \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=rootfs \
	-serial "file:$d/console.log" -serial "file:$d/tests.log" </dev/null || true
grep '^BENCH' "$d/tests.log" || { echo "benchmark did not run"; exit 1; }
grep -q '^ok 1 bench' "$d/tests.log"
