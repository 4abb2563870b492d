#!/usr/bin/env bash
# Installs everything Trainyard needs to build, test and run its examples,
# from Debian 12 packages only.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PACKAGES=(
  cmake ninja-build ccache g++ pkg-config
  libyaml-cpp-dev nlohmann-json3-dev libsqlite3-dev libcli11-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread zlib1g-dev libgloo-dev python3-torch python3-numpy dataset-fashion-mnist
  openmpi-bin libopenmpi-dev libeigen3-dev python3-optuna
  libboost1.74-dev libpq-dev postgresql chromium libsimdjson-dev
  python3-fastapi python3-uvicorn wrk
  libssl-dev etcd-server
  containerd runc containernetworking-plugins podman catatonit busybox-static
  slurm-wlm munge
  protobuf-compiler libprotobuf-dev python3-protobuf
  jupyter-notebook python3-notebook python3-ipykernel
)
# The dashboard is built with npm; use the machine's Node.js, else Debian's.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# `trainyard server` started as root runs jobs as this unprivileged user
# (never as root beside the store and the token file; docs/security.md).
if ! id trainyard-jobs >/dev/null 2>&1; then
  $SUDO useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin trainyard-jobs
fi
