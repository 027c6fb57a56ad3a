#!/usr/bin/env bash
# Installs the Debian 12 packages the build and tests need, when any is
# missing. Extra package names may be given as arguments.
#   scripts/install-deps.sh [--list] [PACKAGE...]
set -euo pipefail

# --list: print the package names and stop (CI installs them itself).
list_only=false
if [ "${1:-}" = "--list" ]; then
  list_only=true
  shift
fi

packages=(
  g++ meson ninja-build pkg-config python3
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev libspdlog-dev nlohmann-json3-dev catch2
  python3-grpcio python3-protobuf python3-h2 openssl prometheus-cpp-dev
  redis-server libhiredis-dev grpc-proto
  "$@"
)

if $list_only; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
