#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the memory-pressure
# stress on the sim device (2x oversubscription of 256 MiB device memory,
# every access pattern, every byte verified). Extra arguments go to
# `xesvm stress` (e.g. --json, -p random, -x 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
exec build/release/tools/xesvm stress "$@"
