#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for the scheduler test
# (tests/test_slurm.py): munged, slurmctld and slurmd on `hostname -s`, one
# partition with every CPU of the machine, no accounting database.
#
#   sudo tests/data/slurm/start-cluster.sh      # needs Debian's slurm-wlm and munge
#   sinfo                                        # the node answers "idle"
#
# Runs as root (the daemons switch to the slurm user). Made for containers and
# CI machines: processes are tracked through /proc and no cgroup, task or
# accounting plugin is loaded, so it needs no systemd and no cgroup mounts.
# Without accounting `sacct` cannot answer, so Snakemake's SLURM executor must
# poll `squeue` (profiles/slurm sets it); MinJobAge keeps finished jobs visible
# to squeue long enough for that.
# Idempotent: a cluster that already answers is left alone
# (HEPSEL_SLURM_RESTART=1 rewrites the configuration and restarts the daemons).
set -euo pipefail

if sinfo --noheader >/dev/null 2>&1 && [[ -z "${HEPSEL_SLURM_RESTART:-}" ]]; then
    echo "start-cluster: a SLURM cluster already answers" >&2
    exit 0
fi
for bin in munged slurmctld slurmd sinfo; do
    command -v "$bin" >/dev/null || { echo "start-cluster: error: '$bin' not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done

host=$(hostname -s)
# slurmd looks its node name up; a bare container may not know its own name
getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
cpus=$(nproc)
# slurmd refuses a node whose RealMemory exceeds what it finds; leave some margin
mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
conf_dir=/etc/slurm
state=/var/lib/slurm
spool=/var/spool/slurmd
logs=/var/log/slurm

# munge: the key comes with Debian's package; create one if it is missing
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
[[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

install -d -o slurm -g slurm "$state" "$logs" "$spool"
install -d "$conf_dir"
cat > "$conf_dir/slurm.conf" <<CONF
# written by hepsel's tests/data/slurm/start-cluster.sh
ClusterName=hepsel
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$state
SlurmdSpoolDir=$spool
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# containers: no cgroups, no task affinity, no per-job accounting
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# cores and memory are what jobs ask for (--cpus-per-task, --mem)
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# finished jobs stay visible to squeue for 10 minutes (Snakemake polls at most every 3)
MinJobAge=600
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Debian's slurmd also reads cgroup.conf when present; nothing in it applies here
rm -f "$conf_dir/cgroup.conf"

if [[ -n "${HEPSEL_SLURM_RESTART:-}" ]]; then
    for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
        [[ -s $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
fi
slurmctld -c     # -c: a fresh state, no jobs left from an earlier cluster
slurmd
for _ in $(seq 100); do
    if sinfo --noheader -o %T 2>/dev/null | grep -qx idle; then
        sinfo
        exit 0
    fi
    sleep 0.2
done
echo "start-cluster: error: the node did not come up; see $logs/slurmctld.log and $logs/slurmd.log" >&2
sinfo >&2 || true
tail -n 20 "$logs/slurmd.log" "$logs/slurmctld.log" >&2 || true
exit 1
