#!/usr/bin/env bash
# What one agent costs the coordinator in memory: N simulated agents (vigil-sim steady: each its
# own CURVE connection, enrolled, a heartbeat every 5 s and a batch of 10 signals every 5 s,
# resending what is not acknowledged) stay connected to one coordinator while its resident
# memory is sampled; compared with the same coordinator before the first agent connected.
#
#   tests/bench/memory.sh [--agents N] [--seconds S] [--ramp R]
#       defaults: 1000 agents, 30 s of samples, R = 100 new connections a second (thousands of
#       CURVE handshakes at the same instant are a storm that a loaded 2-core machine answers
#       with handshake timeouts and reconnects, which is not what is measured here)
#
# Prints, after the simulator's own line,
#   coordinator: agents=N rss_kib=R baseline_kib=B kib_per_agent=K all_in_kib_per_agent=A hwm_kib=H
# rss_kib: the largest VmRSS sampled once every agent is connected (once a second for S s);
# kib_per_agent = (R - B) / N, what each more agent adds; all_in = R / N, the whole process
# shared out (the design's target: <= 100 KB per agent all-in). hwm_kib: the peak (VmHWM) over
# the whole run, enrollment included. The private PostgreSQL is a separate process, not counted.
set -euo pipefail
AGENTS=1000
SECONDS_STEADY=30
RAMP=100
while (($#)); do
    case $1 in
    --agents) AGENTS=$2; shift 2 ;;
    --seconds) SECONDS_STEADY=$2; shift 2 ;;
    --ramp) RAMP=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "memory.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done
export H_HEARTBEAT=5s H_LOG_LEVEL=warn
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$H_COORD_PID/status"; }
sleep 2
baseline=$(status_kib VmRSS)
h_log "memory: coordinator at ${baseline} KiB; $AGENTS agents connecting"

out=$H_DIR/sim.out
h_sim steady --secret-file "$H_DIR/enrollment.secret" --agents "$AGENTS" --seconds 3600 \
    --interval-ms 5000 --signals-per-message 10 --stop-file "$H_DIR/sim.stop" \
    --enroll-seconds 900 --ramp "$RAMP" >"$out" 2>"$H_DIR/sim.err" &
sim_pid=$!
ready() {
    kill -0 "$sim_pid" 2>/dev/null || h_fail "vigil-sim exited: $(cat "$out" "$H_DIR/sim.err")"
    grep -q "sim: ready" "$out"
}
h_wait "$AGENTS agents enrolled" 620 ready
rss=0
for _ in $(seq 1 "$SECONDS_STEADY"); do
    sleep 1
    now=$(status_kib VmRSS)
    ((now > rss)) && rss=$now
done
hwm=$(status_kib VmHWM)
connected=$(h_sql "select count(*) from agents where node like 'sim-%' and state = 'active'")
touch "$H_DIR/sim.stop"
wait "$sim_pid" || h_fail "vigil-sim: $(cat "$out") $(tail -5 "$H_DIR/sim.err")"
cat "$out" | grep 'sim: steady'
[[ $connected == "$AGENTS" ]] || h_fail "only $connected of $AGENTS agents active while measured"
echo "coordinator: agents=$AGENTS rss_kib=$rss baseline_kib=$baseline" \
    "kib_per_agent=$(awk -v r="$rss" -v b="$baseline" -v n="$AGENTS" 'BEGIN { printf "%.1f", (r - b) / n }')" \
    "all_in_kib_per_agent=$(awk -v r="$rss" -v n="$AGENTS" 'BEGIN { printf "%.1f", r / n }')" \
    "hwm_kib=$hwm"
