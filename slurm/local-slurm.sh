#!/usr/bin/env bash
# A single-node SLURM on this machine, for tests and trying things out.
#
#   slurm/local-slurm.sh start  STATE_DIR   # munge + slurmctld + slurmd; waits until the node takes jobs
#   slurm/local-slurm.sh status STATE_DIR   # exit 0 when the controller answers and the node is usable
#   slurm/local-slurm.sh stop   STATE_DIR   # cancels its jobs, stops the daemons it started (by pid file)
#
# It follows the recipe in DESIGN.md's slurm-single-node.md (Debian packages
# munge, slurmctld, slurmd, slurm-client; SLURM 22.05), run as root. Two
# additions keep every daemon on loopback: the node address is 127.0.0.1 and
# CommunicationParameters=NoCtldInAddrAny,NoInAddrAny makes slurmctld, slurmd and srun bind to the
# address their host name resolves to instead of 0.0.0.0; `start` refuses to
# run when this host name does not resolve to a loopback address.
#
# `start` is idempotent: when a controller already answers, it only waits for
# the node. `stop` ends only processes whose pids it recorded in STATE_DIR
# (munged only if this script started it), never anything found by name.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
STATE=$(mkdir -p "$2" && cd "$2" && pwd)
CONF=/etc/slurm/slurm.conf
HOST=$(hostname)
MARK="# written by activemat slurm/local-slurm.sh"

log() { echo "local-slurm: $*" >&2; }

running() {  # running PID: the process exists and is not a zombie
    kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

alive() {  # alive PIDFILE: the pid in the file runs
    [ -s "$1" ] && running "$(cat "$1")"
}

controller_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }

node_state() { sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1; }

node_ready() {
    case "$(node_state)" in
        idle*|mix*|alloc*|comp*) return 0 ;;
        *) return 1 ;;
    esac
}

need_tools() {
    local missing=""
    for tool in munged slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    if [ -n "$missing" ]; then
        log "missing:$missing; install with: apt-get install -y slurmctld slurmd slurm-client munge"
        exit 3
    fi
    if [ "$(id -u)" != 0 ]; then
        log "must run as root (munged runs as user munge, slurmd as root)"
        exit 3
    fi
}

check_loopback() {
    local addr
    addr=$(getent hosts "$HOST" | awk '{print $1; exit}')
    case "$addr" in
        127.*|::1) ;;
        *) log "host name $HOST resolves to '$addr', not loopback: refusing to start daemons that would listen there"
           exit 3 ;;
    esac
}

node_cpus() {  # the machine's CPUs as slurmd sees them; plain nproc would follow the caller's CPU affinity
    slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | grep . || nproc --all
}

write_conf() {
    local tmp
    tmp=$(mktemp)
    cat > "$tmp" <<CONF
$MARK (state: $STATE)
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/slurmd
StateSaveLocation=$STATE/state
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmUser=root
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(node_cpus) RealMemory=20000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
    if [ -e "$CONF" ] && ! head -n1 "$CONF" | grep -qF "$MARK"; then
        log "$CONF exists and was not written by this script; leaving it alone (remove it to use this script)"
        rm -f "$tmp"
        exit 3
    fi
    mkdir -p "$(dirname "$CONF")"
    install -m 644 "$tmp" "$CONF"
    rm -f "$tmp"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0  # a munged already answers (ours from an earlier start, or the system's)
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid" </dev/null >/dev/null 2>&1 9>&-
    for _ in $(seq 50); do
        [ -s /run/munge/munged.pid ] && break
        sleep 0.1
    done
    cp /run/munge/munged.pid "$STATE/munged.pid"  # marks munged as ours, for stop
}

lock() {  # one start/stop at a time per STATE_DIR (daemons get fd 9 closed: they must not hold it)
    exec 9>"$STATE/.lock"
    flock -w 120 9 || { log "another start/stop holds $STATE/.lock"; exit 1; }
}

wait_for() {  # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
    local limit=$1; shift
    for _ in $(seq $((limit * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

start() {
    need_tools
    lock
    if controller_up; then
        log "a slurmctld already answers; not starting another"
    else
        check_loopback
        mkdir -p "$STATE/slurmd" "$STATE/state"
        write_conf
        start_munge
        alive "$STATE/slurmctld.pid" || slurmctld </dev/null >/dev/null 2>&1 9>&-
        wait_for 20 controller_up || { log "slurmctld did not answer; see $STATE/slurmctld.log"; exit 1; }
        alive "$STATE/slurmd.pid" || slurmd </dev/null >/dev/null 2>&1 9>&-
    fi
    if ! wait_for 60 node_ready; then
        log "node $HOST is '$(node_state)', not ready; see $STATE/slurmd.log"
        exit 1
    fi
    log "up: partition debug, node $HOST ($(node_state)), state in $STATE"
}

stop_pid() {  # stop_pid NAME PIDFILE: TERM, wait, then KILL the recorded pid only
    local name=$1 file=$2 pid
    alive "$file" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        running "$pid" || break
        sleep 0.2
    done
    if running "$pid"; then
        log "$name ($pid) ignored TERM; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
    log "stopped $name ($pid)"
}

stop() {
    lock
    if controller_up && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
        scancel --full $(squeue -h -o %i) 2>/dev/null || true  # jobs run under slurmd: end them first
        wait_for 60 test -z "$(squeue -h -o %i 2>/dev/null)" || log "jobs still listed: $(squeue -h -o %i | xargs)"
    fi
    stop_pid slurmd "$STATE/slurmd.pid"
    stop_pid slurmctld "$STATE/slurmctld.pid"
    stop_pid munged "$STATE/munged.pid"
}

status() {
    local rc=0 name
    for name in munged slurmctld slurmd; do
        if alive "$STATE/$name.pid"; then
            echo "$name: running (pid $(cat "$STATE/$name.pid"))"
        else
            echo "$name: not started from $STATE"
        fi
    done
    if controller_up; then
        echo "controller: up"
        sinfo 2>/dev/null || true
        node_ready || rc=1
    else
        echo "controller: not answering"
        rc=1
    fi
    return $rc
}

case "$ACTION" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
