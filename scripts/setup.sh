#!/usr/bin/env bash
# One-time setup on a fresh Debian 12 machine: packages, then the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo "built: ./build/bin/trainyard"
