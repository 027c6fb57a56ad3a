#!/usr/bin/env bash
# Install what is missing, build, run every test with meson.
#   scripts/test.sh              build/ with the default compiler
#   scripts/test.sh --sanitize   build-asan/ with AddressSanitizer + UBSan
#   scripts/test.sh --clang      build-clang/ with clang and -Wthread-safety
#                                (and libFuzzer); the hardening suite's
#                                attacks run in the other two builds only
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
options=()
extra_packages=()
test_args=()
case "${1:-}" in
  "") ;;
  --sanitize) dir=build-asan; options=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
  --clang) dir=build-clang; extra_packages=(clang libclang-rt-14-dev)
           test_args=(--no-suite hardening) ;;
  *) echo "usage: scripts/test.sh [--sanitize|--clang]" >&2; exit 2 ;;
esac

scripts/install-deps.sh "${extra_packages[@]}"
if [ ! -f "$dir/build.ninja" ]; then
  if [ "$dir" = build-clang ]; then
    CXX=clang++ meson setup "$dir" "${options[@]}"
  else
    meson setup "$dir" "${options[@]}"
  fi
fi
ninja -C "$dir"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$dir" --print-errorlogs "${test_args[@]}"
