#!/usr/bin/env bash
# Install what is missing, build, run every test with meson.
#   scripts/test.sh              build/ with the default compiler (gcc)
#   scripts/test.sh --sanitize   build-asan/ with clang, AddressSanitizer +
#                                UBSan and -Wthread-safety: the tests under
#                                `meson test --setup=asan`, then the timed
#                                libFuzzer runs (the fuzz-long suite). One
#                                clang build does all three: it compiles in
#                                a quarter of gcc's ASan build's time
#   scripts/test.sh --release    build-release/ with --buildtype=release:
#                                only the server and the client, then the
#                                instructions suite (server instructions per
#                                call under callgrind against the baseline
#                                tests/bench/instructions.json, and its
#                                parser's unit test; docs/instructions.md)
# Test logs: <build>/meson-logs/testlog*.json (.ci/run counts them).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
options=()
extra_packages=()
test_args=()
targets=()  # Empty: everything.
case "${1:-}" in
  "") ;;
  --sanitize) dir=build-asan; options=(-Db_sanitize=address,undefined -Db_lundef=false)
              extra_packages=(clang libclang-rt-14-dev)
              test_args=(--setup=asan) ;;
  # Instruction counts need only the two binaries: building the tests too
  # would take minutes CI does not have.
  --release) dir=build-release; options=(--buildtype=release)
             extra_packages=(valgrind)
             targets=(server/routeguide-server client/routeguide-client)
             test_args=(--no-rebuild --suite instructions) ;;
  *) echo "usage: scripts/test.sh [--sanitize|--release]" >&2; exit 2 ;;
esac

scripts/install-deps.sh "${extra_packages[@]}"
# A build-asan/ made by gcc (before the sanitizer build moved to clang)
# would keep gcc: start it again.
if [ "$dir" = build-asan ] && [ -f "$dir/build.ninja" ] &&
    ! grep -q "clang++" "$dir/build.ninja"; then
  echo "scripts/test.sh: $dir/ was configured with another compiler; setting it up again with clang"
  rm -rf "$dir"
fi
if [ ! -f "$dir/build.ninja" ]; then
  if [ "$dir" = build-asan ]; then
    CXX=clang++ meson setup "$dir" "${options[@]}"
  else
    meson setup "$dir" "${options[@]}"
  fi
fi
ninja -C "$dir" "${targets[@]}"
status=0
meson test -C "$dir" --print-errorlogs "${test_args[@]}" || status=$?
if [ "$dir" = build-asan ]; then
  # The fuzzers are built with ASan + UBSan: the asan setup's settings.
  meson test -C "$dir" --print-errorlogs --suite fuzz-long --setup=asan \
    --logbase testlog-fuzz-long || status=$?
fi
exit "$status"
