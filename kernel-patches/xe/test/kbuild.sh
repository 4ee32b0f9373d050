#!/usr/bin/env bash
# kbuild.sh SRC OUT FRAGMENT [make targets...]
# Configure (tinyconfig + fragment + olddefconfig) only when the fragment
# changed, then build incrementally with make -j2 into OUT.
set -euo pipefail
src=$1 out=$2 frag=$3
shift 3
jobs=${XESVM_JOBS:-2}
mkdir -p "$out"
fhash=$(sha256sum "$frag" | cut -c1-16)
if [ ! -f "$out/.config" ] || [ "$(cat "$out/.xesvm-frag" 2>/dev/null)" != "$fhash" ]; then
	echo "kbuild: configuring $out"
	make -s -C "$src" O="$out" tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag" >/dev/null
	make -s -C "$src" O="$out" olddefconfig >/dev/null
	# every option of the fragment must have survived olddefconfig
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qx -- "$line" "$out/.config" || { echo "kbuild: option lost: $line" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }; opt=${opt%% *}
			grep -q "^$opt=" "$out/.config" && { echo "kbuild: option still set: $opt" >&2; bad=1; } ;;
		esac
	done <"$frag"
	[ $bad -eq 0 ] || exit 1
	echo "$fhash" >"$out/.xesvm-frag"
fi
make -s -C "$src" O="$out" -j"$jobs" "${@:-bzImage}"
