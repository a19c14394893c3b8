#!/bin/bash
# A one-node SLURM cluster on this machine, to run the example job scripts for real.
#
#     examples/slurm/local-cluster.sh install   # apt-get slurm-wlm + munge (root, Debian/Ubuntu)
#     examples/slurm/local-cluster.sh start     # install if needed, then munged + slurmctld + slurmd
#     examples/slurm/local-cluster.sh status    # 'up' and sinfo, or 'down' (exit 1)
#     examples/slurm/local-cluster.sh stop      # stop the three daemons (the state dir stays)
#     examples/slurm/local-cluster.sh env       # the line to paste so sbatch/squeue find it
#
# Everything lives in one state directory, $FERCLI_SLURM_DIR (default /tmp/fercli-slurm):
# the slurm.conf, its own MUNGE key and socket, spool/state directories and the daemons'
# logs.  Nothing under /etc is written and no system service is started, so it does not
# disturb a site's SLURM or MUNGE.  Clients find it with SLURM_CONF=$FERCLI_SLURM_DIR/slurm.conf
# (`eval "$(examples/slurm/local-cluster.sh env)"`).  start and stop are idempotent.
#
# The node is this machine as it is (CPUs = nproc, RealMemory = MemTotal less 1 GiB, no
# GPUs), so jobs must ask for what it has: e.g. `sbatch -c 2 --mem=1G --gpus-per-node=0`.
# Settings that make it quick: proctrack/linuxproc + task/none (no cgroups needed, works in
# containers), select/cons_tres (cores and memory are consumable), MinJobAge=30 s, and a
# requeued job may start again after 5 s instead of the default 120 (cred_expire).
# The daemons run as root (SlurmUser=SlurmdUser=root), so `start` must run as root.
#
# Used by .ci/run (start before `make test`, stop after) and tests/test_slurm.py.

set -euo pipefail

DIR=${FERCLI_SLURM_DIR:-/tmp/fercli-slurm}
CONF=$DIR/slurm.conf
CTLD_PORT=${FERCLI_SLURM_PORT:-6817}
NODE=$(hostname -s)

say() { echo "local-cluster: $*"; }
die() { echo "local-cluster: $*" >&2; exit 1; }

have_slurm() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; }

pid_alive() {  # pid_alive PIDFILE
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install() {
    if have_slurm; then
        say "slurm-wlm and munge are installed ($(slurmctld -V))"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "installing SLURM needs root: run 'sudo $0 install' (or apt-get install slurm-wlm munge)"
    command -v apt-get >/dev/null || die "no apt-get here: install slurm-wlm (slurmctld, slurmd, sbatch) and munge with this system's package manager"
    say "installing slurm-wlm and munge with apt-get (no recommends; the packages' own services are not used)"
    local t0=$SECONDS
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
    say "installed $(slurmctld -V) in $((SECONDS - t0)) s"
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    [ "$mem_mb" -ge 512 ] || mem_mb=512
    mkdir -p "$DIR"/{munge,ctld,slurmd,log}
    chmod 700 "$DIR/munge"
    cat >"$CONF" <<EOF
# Written by fercli examples/slurm/local-cluster.sh: a one-node test cluster.
ClusterName=fercli-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=5
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
ReturnToService=2
MinJobAge=30
KillWait=10
JobRequeue=1
SlurmdTimeout=60
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    say "wrote $CONF (node $NODE: $cpus CPUs, $mem_mb MB)"
}

cluster_up() {
    SLURM_CONF=$CONF timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

start() {
    have_slurm || install
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && cluster_up; then
        say "already running ($CONF)"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "starting the local cluster needs root (its daemons run as root): sudo $0 start"
    write_config
    if [ ! -f "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$DIR/munge/munge.key"
        say "created a MUNGE key: $DIR/munge/munge.key"
    fi
    if ! pid_alive "$DIR/munge/munged.pid"; then
        munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
            --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
        say "started munged (socket $DIR/munge/munge.socket)"
    fi
    # -c: a clean start (no jobs from an earlier run); -i: ignore stale state
    pid_alive "$DIR/slurmctld.pid" || { SLURM_CONF=$CONF slurmctld -c -i; say "started slurmctld (port $CTLD_PORT)"; }
    pid_alive "$DIR/slurmd.pid" || { SLURM_CONF=$CONF slurmd -N "$NODE"; say "started slurmd (node $NODE)"; }
    local i
    for ((i = 0; i < 60; i++)); do
        if cluster_up; then
            say "up ($((SECONDS)) s since this command started): $(SLURM_CONF=$CONF sinfo -h -o '%P %D node(s) %T, %c CPUs, %m MB')"
            say "use it with: export SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.5
    done
    SLURM_CONF=$CONF sinfo -N -l >&2 || true
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "the cluster did not come up within 30 s (logs in $DIR/log)"
}

stop_one() {  # stop_one NAME PIDFILE
    local pid i
    pid_alive "$2" || return 0
    pid=$(cat "$2")
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || { say "stopped $1 (pid $pid)"; return 0; }
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    say "killed $1 (pid $pid): it did not stop within 10 s"
}

stop() {
    if [ -f "$CONF" ] && have_slurm; then
        # Jobs still running would outlive slurmd (linuxproc does not kill them on exit).
        SLURM_CONF=$CONF timeout 10 scancel --full --state=RUNNING --state=PENDING -u "$(id -un)" 2>/dev/null || true
    fi
    stop_one slurmd "$DIR/slurmd.pid"
    stop_one slurmctld "$DIR/slurmctld.pid"
    stop_one munged "$DIR/munge/munged.pid"
    say "down (state and logs kept in $DIR)"
}

status() {
    if have_slurm && [ -f "$CONF" ] && cluster_up; then
        echo "up: SLURM_CONF=$CONF"
        SLURM_CONF=$CONF sinfo
        return 0
    fi
    echo "down (start it as root: $0 start)"
    return 1
}

case ${1:-} in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
