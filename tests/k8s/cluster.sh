#!/usr/bin/env bash
# The real Kubernetes control plane for the tests that need one (ctest
# fixture "k8s"): started from the scripts TRAINYARD_TEST_K8S points at
# (../shared/k8s on the project's machines; scripts/test.sh finds it), stopped after.
#   tests/k8s/cluster.sh start DIR | stop DIR
# Without TRAINYARD_TEST_K8S it says so loudly and writes DIR/skipped, so
# every test that needs the cluster skips with that reason.
set -euo pipefail
cmd=$1 D=$2
case "$cmd" in
  start)
    rm -rf "$D"; mkdir -p "$D"
    if [ -z "${TRAINYARD_TEST_K8S:-}" ] || [ ! -x "${TRAINYARD_TEST_K8S}/cluster-up.sh" ]; then
      msg="TRAINYARD_TEST_K8S is not set to a directory with cluster-up.sh (../shared/k8s): Kubernetes tests are SKIPPED"
      echo "$msg" | tee "$D/skipped" >&2
      exit 0
    fi
    if ! command -v etcd >/dev/null; then
      msg="etcd not found (apt-get install etcd-server): Kubernetes tests are SKIPPED"
      echo "$msg" | tee "$D/skipped" >&2
      exit 0
    fi
    # Nodes that stop renewing their lease go NotReady after 10 s (default 40 s).
    K8S_NODE_GRACE=10s K8S_BIN_DIR="$D/bin" "$TRAINYARD_TEST_K8S/cluster-up.sh" "$D/cluster"
    ;;
  stop)
    # By the pids cluster-up wrote, whether or not TRAINYARD_TEST_K8S is still set.
    for p in kube-controller-manager kube-scheduler kube-apiserver etcd; do
      f="$D/cluster/$p.pid"
      [ -f "$f" ] || continue
      pid=$(cat "$f"); kill "$pid" 2>/dev/null || true
      for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true; rm -f "$f"
    done
    exit 0
    ;;
esac
