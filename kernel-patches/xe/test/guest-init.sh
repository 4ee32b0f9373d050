#!/bin/sh
# PID 1 of the xesvm test guest. The root file system is the host's, shared
# read-only over virtio-9p. The kernel hands unknown key=value boot
# parameters to init as environment variables: XESVM_PLAN names a plan file
# with one test per line:   <timeout-seconds> <name> <command...>
# Test output goes to the second serial port (ttyS1) so kernel messages on
# the console (ttyS0) cannot interleave with the TAP output.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C LC_ALL=C

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# A checkout (or cache) under /tmp would be hidden by the tmpfs on /tmp:
# bind the host directories the plan and this script live in back over it.
keep=
for p in "$0" "$XESVM_PLAN"; do
	case "$p" in
	/tmp/?*/*) d=${p#/tmp/}; keep="$keep ${d%%/*}" ;;
	esac
done
if [ -n "$keep" ]; then
	mkdir -p /dev/.host-tmp && mount --bind /tmp /dev/.host-tmp
fi
mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in $keep; do
	mkdir -p "/tmp/$d" && mount --bind "/dev/.host-tmp/$d" "/tmp/$d"
done
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmpfs /dev/shm

out=/dev/ttyS1
[ -c "$out" ] || out=/dev/console
exec >"$out" 2>&1

echo "XESVM-GUEST kernel $(uname -r) cpus $(nproc)"

# Device nodes for test_hmm, as test_hmm.sh does.
major=$(awk '$2 == "HMM_DMIRROR" { print $1 }' /proc/devices)
if [ -n "$major" ]; then
	for i in 0 1 2 3; do
		[ -e /dev/hmm_dmirror$i ] || mknod /dev/hmm_dmirror$i c "$major" $i
	done
fi

# THP on request only: 6.12's make_device_exclusive_range() refuses tail
# pages, so always-on THP makes the exclusive-access tests fail with -EBUSY.
thp=/sys/kernel/mm/transparent_hugepage
[ -w $thp/enabled ] && echo madvise >$thp/enabled
[ -w $thp/defrag ] && echo madvise >$thp/defrag
# A few hugetlb pages for the hugetlbfs tests.
echo 4 >/proc/sys/vm/nr_hugepages 2>/dev/null
# Tests write their scratch files here (hmm-tests uses /tmp).
cd /tmp

if [ -z "$XESVM_PLAN" ] || [ ! -r "$XESVM_PLAN" ]; then
	echo "XESVM-ERROR no plan ($XESVM_PLAN)"
else
	while read -r tmo name cmd; do
		case "$tmo" in ''|'#'*) continue ;; esac
		echo "XESVM-BEGIN $name"
		start=$(cut -d' ' -f1 /proc/uptime)
		timeout -s KILL "$tmo" sh -c "$cmd" </dev/null
		rc=$?
		end=$(cut -d' ' -f1 /proc/uptime)
		echo "XESVM-END $name rc=$rc start=$start end=$end"
	done <"$XESVM_PLAN"
fi
echo "XESVM-DONE"
sync
busybox reboot -f
