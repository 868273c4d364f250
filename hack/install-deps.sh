#!/usr/bin/env bash
# Installs every Debian package that gpu-autoscaler's build, tests, benchmarks and
# demo need. Idempotent: packages already present are skipped, and apt is only
# consulted when something is missing.
#
# Starts no system service: the tests run their own servers on loopback.
# Needs root, or sudo for a user with apt rights (a minimal Debian has no sudo).
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
  # zlib reads gzipped usage traces (src/common/gzip_file.h: gpu-autoscaler recommend, bench)
  prometheus zlib1g-dev
  # the node agent's pod attribution: the kubelet's PodResources API is gRPC over a unix
  # socket (protoc and grpc_cpp_plugin generate its client at build time)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # the LP upper bound on placement quality in the placement reports (bench/placement_bound.cc,
  # docs/placement.md; docs/design.md "Placement bound"): GLPK, tooling only
  libglpk-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev nghttp2-client wrk curl openssl procps
  golang-go nghttp2-server
  # tests/report: the HTML report opened in headless Chromium (screenshot, rendered DOM)
  chromium
  # hack/helm-template.sh: a `helm template` equivalent built offline in GOPATH mode
  # (Debian has no helm): helm's template functions and a YAML library
  golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
  # tests/charts/check_schemas.py: the Kubernetes API schema (the OpenAPI spec as the
  # Python client's generated models) to check every rendered object strictly
  python3-kubernetes
  # scripts (demo, manifests, loopback receivers) and the real SMTP server that the
  # Budget alert tests send email to
  python3 python3-yaml python3-aiosmtpd
)

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
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
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: not root and sudo is not installed; run this script as root" \
      "(e.g. 'su -c hack/install-deps.sh'), or install sudo and give this user apt rights" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# The tests start their own PostgreSQL and Prometheus on free loopback ports.
# Start nothing system-wide: no "main" PostgreSQL cluster (postgresql-common's
# documented switch), no service started by a package's install script
# (policy-rc.d, as in container images), and the services disabled afterwards.
if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "install ok installed"; then
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
policy_rc_d=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy_rc_d ]]; then
  printf '#!/bin/sh\n# written by gpu-autoscaler hack/install-deps.sh during an install\nexit 101\n' |
    $SUDO tee "$policy_rc_d" >/dev/null
  $SUDO chmod 755 "$policy_rc_d"
  own_policy=1
fi
cleanup() { if ((own_policy)); then $SUDO rm -f "$policy_rc_d"; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}"
if [[ -d /run/systemd/system ]]; then
  for unit in postgresql prometheus; do
    if [[ " ${missing[*]} " == *" $unit "* ]]; then
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi
echo "install-deps: done"
