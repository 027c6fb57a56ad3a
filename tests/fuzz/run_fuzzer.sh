#!/bin/sh
# Runs a libFuzzer binary for a bounded time over its corpus; new inputs go
# to a scratch directory, never into the source tree.
#   run_fuzzer.sh FUZZER SECONDS CORPUS_DIR
set -eu
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Exit 1 on a finding (libFuzzer's default, 77, would read as "skipped" to
# meson).
"$1" -max_total_time="$2" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  "$scratch" "$3"
