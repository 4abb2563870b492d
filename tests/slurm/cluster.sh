#!/usr/bin/env bash
# A real Slurm cluster on this machine for the tests that need one (ctest
# fixture "slurm"): munged with its own key and socket, slurmctld, and 4
# slurmd daemons node1..node4 on localhost (each `slurmd -N nodeX` on its own
# port), Debian's slurm-wlm 22.05; state, logs and config under DIR.
#   tests/slurm/cluster.sh start DIR | stop DIR
# Clients find it through DIR/env (SLURM_CONF=DIR/slurm.conf). Without
# Slurm installed it says so loudly and writes DIR/skipped, so every test that
# needs it skips with that reason. CPUs and memory per node are declared
# (SlurmdParameters=config_overrides): 4 nodes of 2 CPUs and 2 GiB here.
set -euo pipefail
cmd=$1 D=$2
NODES=${SLURM_TEST_NODES:-4}

stop() {
  for f in "$D"/slurmd-node*.pid "$D"/slurmctld.pid "$D"/munged.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  # Steps a killed slurmd left behind (their slurmstepd and tasks) are this cluster's too.
  if [ -f "$D/slurm.conf" ]; then
    for p in $(pgrep -f "slurmstepd" || true); do
      if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$D/slurm.conf"; then kill -9 "$p" 2>/dev/null || true; fi
    done
  fi
}

case "$cmd" in
  start)
    rm -rf "$D"; mkdir -p "$D"; chmod 700 "$D"
    for bin in slurmctld slurmd munged sbatch squeue scontrol; do
      if ! command -v "$bin" >/dev/null; then
        echo "$bin not found (apt-get install slurm-wlm munge): Slurm tests are SKIPPED" | tee "$D/skipped" >&2
        exit 0
      fi
    done
    mkdir -p "$D/state" "$D/log" "$D/munge"
    chmod 700 "$D/munge"
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$D/munge/munge.key"
    munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.sock" --pid-file="$D/munged.pid" \
      --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"
    freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    CTLD_PORT=$(freeport)
    node_lines=""
    for i in $(seq "$NODES"); do
      node_lines+="NodeName=node$i NodeHostname=localhost NodeAddr=localhost Port=$(freeport) CPUs=2 RealMemory=2048 State=UNKNOWN"$'\n'
    done
    cat > "$D/slurm.conf" <<CONF
ClusterName=trainyard-test
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=10
SlurmctldTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
MaxJobCount=20000
$node_lines
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    echo "export SLURM_CONF=$D/slurm.conf" > "$D/env"
    export SLURM_CONF="$D/slurm.conf"
    slurmctld -f "$SLURM_CONF" -i
    for i in $(seq "$NODES"); do
      mkdir -p "$D/spool/node$i"
      slurmd -f "$SLURM_CONF" -N "node$i"
    done
    # Up once every node is idle (an observable condition, polled).
    for t in $(seq 300); do
      idle=$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2=="idle"' | wc -l)
      [ "$idle" -ge "$NODES" ] && break
      sleep 0.1
    done
    if [ "$idle" -lt "$NODES" ]; then
      echo "slurm cluster not up: $(sinfo -N 2>&1)" >&2
      tail -20 "$D/log/slurmctld.log" >&2 || true
      stop; exit 1
    fi
    echo "slurm: $NODES nodes idle ($D/slurm.conf)"
    ;;
  stop)
    stop
    exit 0
    ;;
esac
