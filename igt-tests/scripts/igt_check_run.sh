#!/usr/bin/env bash
# Runs one IGT binary and checks its exit code and output.
#   igt_check_run.sh --exit CODE [--expect REGEX]... [--reject REGEX]...
#                    [--env NAME=VALUE]... -- BINARY [ARGS...]
# stdout and stderr are checked together (extended regular expressions,
# one line each). Exits 0 when the exit code matches, every --expect
# pattern matches a line and no --reject pattern does; otherwise prints
# what differed and the output, and exits 1.
set -uo pipefail
want_exit="" expects=() rejects=() envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --exit) want_exit=$2; shift 2 ;;
    --expect) expects+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "igt_check_run: unknown argument '$1' (expected --exit/--expect/--reject/--env/--)" >&2; exit 2 ;;
  esac
done
if [ -z "$want_exit" ] || [ $# -eq 0 ]; then
  echo "igt_check_run: need --exit CODE and -- BINARY [ARGS...]" >&2; exit 2
fi
out=$(env ${envs[@]+"${envs[@]}"} "$@" 2>&1)
rc=$?
ok=1
if [ "$rc" != "$want_exit" ]; then
  echo "igt_check_run: exit code $rc, expected $want_exit"; ok=0
fi
for p in ${expects[@]+"${expects[@]}"}; do
  if ! grep -qE -- "$p" <<<"$out"; then echo "igt_check_run: no line matches '$p'"; ok=0; fi
done
for p in ${rejects[@]+"${rejects[@]}"}; do
  if grep -qE -- "$p" <<<"$out"; then echo "igt_check_run: a line matches rejected '$p'"; ok=0; fi
done
if [ "$ok" = 1 ]; then exit 0; fi
echo "---- output of: $* ----"
printf '%s\n' "$out"
exit 1
