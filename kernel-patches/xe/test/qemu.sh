# shellcheck shell=bash
# Sourced by run.sh and guest.sh: boot one kernel in QEMU with the host root
# as the guest's root and run a plan.
#
# xesvm_qemu_guest BZIMAGE DIR LABEL INIT
#   Boots BZIMAGE (TCG, 2 vCPUs, 2 GiB, the host root shared read-only over
#   virtio-9p) with INIT as PID 1, which runs DIR/plan (one test per line:
#   <timeout-seconds> <name> <command...>). The kernel log goes to
#   DIR/console.log, the tests' output to DIR/tests.log. The whole guest
#   runs under a watchdog of XESVM_QEMU_TIMEOUT seconds (default 7200).
#   The software Xe device gets XESVM_VRAM_MB of VRAM (default 64).
#   Returns 0 even when QEMU dies: the logs say what happened.
xesvm_qemu_guest() {
	local img=$1 d=$2 label=$3 init=$4 qtmo=${XESVM_QEMU_TIMEOUT:-7200}
	# With KASAN in TCG, SLUB debugging of every cache (SLUB_DEBUG_ON)
	# makes the ACPI interpreter's _PRT evaluation during PCI probe so slow
	# that the stopper thread of a clocksource switch cannot run for
	# minutes (PREEMPT_NONE) and the soft-lockup detector fires at boot:
	# keep SLUB debugging for the caches the tests are about, KASAN for
	# everything, and route PCI interrupts without ACPI.
	local bootdbg="slub_debug=FZPU,anon_vma,anon_vma_chain acpi=noirq"
	# The software Xe device's VRAM (module default 256 MiB). Every test
	# reads the size from MEM_REGIONS and sizes its oversubscription from
	# it, so a smaller VRAM keeps every eviction test's work (2x, 4x VRAM)
	# small under TCG without changing what it proves.
	local vram="xe_soft.vram_mb=${XESVM_VRAM_MB:-64}"
	rm -f "$d/console.log" "$d/tests.log"
	echo "[kernel] booting $label kernel in QEMU (TCG, watchdog ${qtmo}s)"
	local s
	s=$(date +%s)
	timeout -s KILL "$qtmo" qemu-system-x86_64 \
		-m 2G -smp 2 -display none -vga none -monitor none -no-reboot \
		-kernel "$img" \
		-append "console=ttyS0 root=rootfs rootfstype=9p rootflags=trans=virtio,version=9p2000.L ro init=$init panic=-1 movablecore=512M $bootdbg $vram XESVM_PLAN=$d/plan" \
		-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=root,mount_tag=rootfs \
		-serial "file:$d/console.log" -serial "file:$d/tests.log" </dev/null ||
		echo "[kernel] QEMU exited with status $? (timeout or crash)"
	echo "[kernel] $label guest ran $(( $(date +%s) - s ))s"
}
