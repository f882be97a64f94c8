#!/usr/bin/env bash
# Installs the Debian 12 packages Magline needs to build and test. Idempotent: runs apt only
# when something is missing. Needs root (or sudo) when it does.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ clang libclang-rt-14-dev python3
  dpdk-dev libdpdk-dev nlohmann-json3-dev libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev libcpp-httplib-dev libpcap-dev
  libyaml-cpp-dev
  # tests and tools
  iproute2 ethtool curl tcpdump python3-scapy python3-yaml gnuplot-nox
  bird2  # the BGP daemon Magline drives (docs/announce.md), and the e2e router's
  systemd  # systemd-analyze verifies config/deploy/systemd/magline.service
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
