#!/bin/sh
# Runs a libFuzzer binary for a bounded time over its corpus. New inputs
# and crash, leak or timeout artifacts are written to a scratch directory,
# never into the source tree; artifacts are then copied to $FUZZ_ARTIFACTS
# (default: fuzz-artifacts/ in the test's working directory, the build
# directory) so that a finding outlives the run.
#   run_fuzzer.sh FUZZER SECONDS CORPUS_DIR
set -eu
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/new" "$scratch/artifacts"
status=0
# Exit 1 on a finding (libFuzzer's default, 77, would read as "skipped" to
# meson).
"$1" -max_total_time="$2" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$scratch/artifacts/" \
  "$scratch/new" "$3" || status=$?
if [ -n "$(ls -A "$scratch/artifacts")" ]; then
  keep=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
  mkdir -p "$keep"
  cp "$scratch"/artifacts/* "$keep"/
  echo "artifacts kept in $keep:" >&2
  ls "$keep" >&2
fi
exit "$status"
