#!/usr/bin/env bash
# Installs every Debian package that gpu-autoscaler's build, tests, benchmarks and
# demo need. Idempotent: packages already present are skipped, and apt is only
# consulted when something is missing.
#
# Usage: hack/install-deps.sh [--check]
#   --check   only report missing packages; exit 1 if any are missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential g++-12 cmake ninja-build ccache pkg-config clang clang-format
  libclang-rt-14-dev git
  # libraries named by the design
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  libfmt-dev prometheus-cpp-dev libcpprest-dev
  # hot-path libraries chosen by measurement (docs/design.md)
  libsimdjson-dev libboost-dev libboost-system-dev libnghttp2-dev
  # cost history storage: SQLite by default, PostgreSQL (real server in tests)
  libsqlite3-dev libpq-dev postgresql
  # GPU utilisation from dcgm-exporter through Prometheus: the tests start their own
  # prometheus on a free loopback port (a system service the package may start is not used);
  # zlib reads gzipped usage traces (bench/gpu_waste_report.cc)
  prometheus zlib1g-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev nghttp2-client wrk curl openssl procps
  golang-go nghttp2-server
  # scripts (demo, manifests, loopback receivers) and the real SMTP server that the
  # Budget alert tests send email to
  python3 python3-yaml python3-aiosmtpd
)

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ "${1:-}" == "--check" ]]; then
  echo "install-deps: missing: ${missing[*]}"
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
