#!/usr/bin/env bash
# The whole test suite: builds, then runs unit and end-to-end tests via CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
# The real Kubernetes the Kubernetes tests start (../shared/k8s beside the
# project on its machines); elsewhere they are skipped, saying so.
if [ -z "${TRAINYARD_TEST_K8S:-}" ]; then
  for d in "$PWD/../shared/k8s" /work/shared/k8s; do
    if [ -x "$d/cluster-up.sh" ]; then export TRAINYARD_TEST_K8S=$(cd "$d" && pwd); break; fi
  done
fi
BUILD_DIR="${BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 "$@"
