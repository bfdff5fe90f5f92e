#!/usr/bin/env bash
# Installs every build, test and run dependency of mesh on Debian 12 (bookworm).
# Idempotent: packages already installed are left alone and apt-get update runs only when a
# package is missing. Run as root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format clang-tidy git
  # libraries mesh links against
  libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libseccomp-dev libsystemd-dev
  libarchive-dev libssl-dev libldns-dev
  # tests and benchmarks (iperf3: the rate-limit tests measure with it; dnsmasq-base: the DNS
  # tests' upstream resolver in the wan namespace, the binary only, no service)
  libgtest-dev libgmock-dev googletest libbenchmark-dev iperf3 dnsmasq-base
  # what the runtime, the sandbox and the demos run
  iproute2 nftables busybox-static socat util-linux procps kmod
  # meshctl capture (meshd runs it in a container's network namespace)
  tcpdump
  # the runtime benchmark's comparison (bench/runtime_bench.cc)
  crun
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
