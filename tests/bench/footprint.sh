#!/usr/bin/env bash
# Agent footprint benchmark: one vigil-agent (every always-available collector at a 1 s
# interval) against prometheus-node-exporter from Debian (default collectors, scraped once a
# second), side by side in the same run, after the same warm-up, over the same window.
#
#   tests/bench/footprint.sh [SECONDS] [WARMUP]    (defaults 30 s window, 10 s warm-up;
#                                                    or WINDOW=, WARMUP= in the environment)
#   VIGIL_BUILD=build-dir                          the binaries to measure (default build/)
#   FOOTPRINT_COLLECTORS="host netstat ..."        only these of the always-available ones
#                                                    (default: all; to see what each costs)
#   FOOTPRINT_PROBES=http,postgres,redis           also run these probe modules (default none:
#                                                    they are optional modules a node may not
#                                                    load; targets: the coordinator's /healthz,
#                                                    its PostgreSQL, a redis-server started here)
#
# The agent's collectors: host, netstat, processes (watching node_exporter, the coordinator
# and the agent's executor by comm) and logs (an access log and an application log that the
# benchmark appends to every second: 10 requests and 1 application line). A collector this
# build's configuration does not know yet (vigil-agent -n refuses it) is left out, and said.
#
# Memory is PSS from /proc/PID/smaps_rollup summed over the agent's processes (vigil-agent and
# its executor vigil-agent-exec), not VmRSS, which double-counts shared pages; anonymous memory
# is Pss_Anon (Anonymous on kernels without it). CPU is utime+stime (+ reaped children) from
# /proc/PID/stat over the window: per collection cycle for the agent (window / 1 s), per scrape
# for node_exporter (one scrape = one collection cycle). Memory figures are the mean of one
# sample a second over the window.
#
# The flight recorder (docs/forensics.md) is on in the measured agent, with its defaults (a
# snapshot every 10 s kept 5 m, at most 4 MiB), as on a node. A second agent with
# flight_recorder.enabled: false runs beside it, with the same collectors, in the same window:
#   flight: rss_kib_on=P1 rss_kib_off=P2 cpu_pct_on=C1 cpu_pct_off=C2 anon_kib_on=A1 anon_kib_off=A2
# rss_kib: VmRSS of agent + executor (coordinator stopped), anon_kib: Pss_Anon over the window,
# cpu_pct: schedstat CPU over the window, % of one CPU. The ring
# fills in 5 m: with WARMUP >= 300 the figures are the full ring's. FOOTPRINT_FLIGHT=0 leaves the
# second agent out (and the line).
#
# Last line: footprint: rss_ratio=R anon_kib=A cpu_ratio=C — rss_ratio from the agent's PSS
# measured alone (after the coordinator and its PostgreSQL, which share its libraries on this
# machine, are stopped), cpu_ratio from schedstat nanoseconds.
# Targets (the design's performance targets), printed, never enforced:
#   rss_ratio <= 0.5, anon_kib <= 4096, cpu_ratio <= 0.2
set -euo pipefail
WINDOW=${1:-${WINDOW:-30}}
WARMUP=${2:-${WARMUP:-10}}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
export H_HEARTBEAT=5s H_LOG_LEVEL=warn H_SELF_INTERVAL=1s H_BATCH_INTERVAL=5s
source "$(dirname "$0")/../lib/harness.sh"

[[ $WINDOW =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [WARMUP]" >&2; exit 64; }
[[ -x $NODE_EXPORTER ]] || { echo "$NODE_EXPORTER not found (apt-get install prometheus-node-exporter)" >&2; exit 69; }
[[ -r /proc/self/smaps_rollup ]] || { echo "/proc/PID/smaps_rollup missing (Linux >= 4.14 needed)" >&2; exit 69; }
WANTED=" ${FOOTPRINT_COLLECTORS:-host netstat processes logs} "
for section in $WANTED; do
    [[ $section =~ ^(host|netstat|processes|logs)$ ]] ||
        { echo "FOOTPRINT_COLLECTORS: unknown collector \"$section\" (host, netstat, processes, logs)" >&2; exit 64; }
done
IFS=, read -ra PROBES <<<"${FOOTPRINT_PROBES:-}"
for kind in "${PROBES[@]}"; do
    [[ $kind =~ ^(http|postgres|redis)$ ]] ||
        { echo "FOOTPRINT_PROBES: unknown probe kind \"$kind\" (http, postgres, redis)" >&2; exit 64; }
done

NE_PID="" REDIS_PID=""
fp_status() { return "$1"; }
fp_cleanup() {
    local status=$?
    if [[ -n $REDIS_PID ]]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
    if [[ -n $NE_PID ]]; then
        kill -TERM "$NE_PID" 2>/dev/null || true
        wait "$NE_PID" 2>/dev/null || true
        NE_PID=""
    fi
    fp_status "$status" || h_cleanup # h_cleanup takes the exit status from $?
    h_cleanup
}

h_setup
trap fp_cleanup EXIT
h_start_coordinator

# ---- the agent: as nobody when nobody can reach its state directory, else as root ----
# h_start_agent hard-codes `user: ""` / `allow_root: true` and the agent's configuration refuses
# duplicate keys, so the agent is started here with the harness's configuration otherwise.
AGENT=fp
adir=$H_DIR/agents/$AGENT
mkdir -p "$adir"
chmod 755 "$H_DIR/agents" "$adir"
if runuser -u nobody -- test -x "$adir" 2>/dev/null; then
    run_as='user: "nobody"'$'\n''allow_root: false'   # vigil-agent chowns state_dir to nobody
else
    run_as='user: ""'$'\n''allow_root: true'
fi
# Logs the logs collector follows, readable by nobody; tick_loop appends to them.
LOGDIR=$adir/logs
mkdir -p "$LOGDIR"
chmod 755 "$LOGDIR"
: >"$LOGDIR/access.log"
: >"$LOGDIR/app.log"
chmod 644 "$LOGDIR/access.log" "$LOGDIR/app.log"
LOG_LINE=0
append_logs() { # one second of traffic: 10 requests (one a 500), one application line
    local i now
    printf -v now '%(%d/%b/%Y:%H:%M:%S +0000)T' -1
    for ((i = 0; i < 10; i++)); do
        printf '10.0.%d.%d - - [%s] "GET /api/items/%d HTTP/1.1" %d 512 "-" "bench/1.0"\n' \
            $((LOG_LINE % 7)) $((i + 1)) "$now" "$LOG_LINE" $((i == 9 ? 500 : 200))
        LOG_LINE=$((LOG_LINE + 1))
    done >>"$LOGDIR/access.log"
    printf '%s INFO worker: processed batch %d\n' "$now" "$LOG_LINE" >>"$LOGDIR/app.log"
}

# Optional probe modules (FOOTPRINT_PROBES): each needs a target on this machine.
probes_yaml=""
for kind in "${PROBES[@]}"; do
    case $kind in
    http)
        probes_yaml+=$'\n'"  http: {interval: 1s, timeout: 1s, targets: [{name: coordinator, url: \"http://127.0.0.1:$H_PORT_HTTP/healthz\"}]}"
        ;;
    postgres)
        pg_sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
        [[ -d $H_DIR/coord/pgsock ]] && pg_sock=$H_DIR/coord/pgsock
        pg_sock=$(readlink -f "$pg_sock")
        probes_yaml+=$'\n'"  postgres: {interval: 1s, timeout: 1s, targets: [{name: store, conninfo: \"host=$pg_sock port=5432 dbname=vigil user=vigil\"}]}"
        ;;
    redis)
        command -v redis-server >/dev/null || h_fail "FOOTPRINT_PROBES=redis: redis-server not found (apt-get install redis-server)"
        REDIS_PORT=$(h_free_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$H_DIR" --logfile "$H_DIR/redis.log" &
        REDIS_PID=$!
        h_wait "redis answering" 10 redis-cli -p "$REDIS_PORT" ping
        probes_yaml+=$'\n'"  redis: {interval: 1s, timeout: 1s, targets: [{name: cache, address: \"127.0.0.1:$REDIS_PORT\"}]}"
        ;;
    esac
done

processes_yaml="  processes:
    interval: 1s
    watch:
      - {name: node-exporter, comm: prometheus-node}
      - {name: coordinator, comm: vigil-coordinat}
      - {name: executor, comm: vigil-agent-exe}"
logs_yaml="  logs:
    interval: 1s
    files:
      - {name: access, path: \"$LOGDIR/access.log\", format: access}
      - name: app
        path: \"$LOGDIR/app.log\"
        format: plain
        patterns:
          - {name: error, regex: \"ERROR|FATAL|panic\"}"
write_agent_config() { # the collectors sections to include
    cat >"$adir/agent.yaml" <<YAML
node: "$AGENT"
state_dir: "$adir/state"
$run_as
coordinator:
  endpoint: "tcp://127.0.0.1:$H_PORT_AGENTS"
  public_key: "$H_COORD_PUB"
enrollment:
  secret_file: "$H_DIR/enrollment.secret"
heartbeat_interval: $H_HEARTBEAT
self_signals_interval: $H_SELF_INTERVAL
batch_interval: $H_BATCH_INTERVAL
collectors:
  host:
    interval: $(interval host)
  netstat:
    interval: $(interval netstat)
$*
link:
  reconnect_min: 100ms
  reconnect_max: 1s
  ack_timeout: 2s
YAML
}
config_ok() { "$VIGIL_BUILD/vigil-agent" -n -c "$adir/agent.yaml" >/dev/null 2>"$adir/config-check.txt"; }
interval() { if [[ $WANTED == *" $1 "* ]]; then echo 1s; else echo 0s; fi; }
collectors=""
for section in host netstat; do [[ $WANTED != *" $section "* ]] || collectors+=" $section"; done
optional=""
for section in processes logs; do
    [[ $WANTED == *" $section "* ]] || continue
    var=${section}_yaml
    write_agent_config "$optional${!var}"
    if config_ok; then
        optional+="${!var}"$'\n'
        collectors+=" $section"
    else
        h_log "collector $section left out: this build refuses its configuration: $(head -1 "$adir/config-check.txt")"
    fi
done
write_agent_config "$optional$probes_yaml"
config_ok || h_fail "vigil-agent refuses the benchmark's configuration: $(cat "$adir/config-check.txt")"
[[ -z ${FOOTPRINT_PROBES:-} ]] || collectors+=" probes:${FOOTPRINT_PROBES}"
h_log "agent collectors at 1 s:$collectors"
"$VIGIL_BUILD/vigil-agent" -c "$adir/agent.yaml" >>"$adir/agent.log" 2>&1 &
H_AGENT_PIDS["$AGENT"]=$! # h_cleanup stops it
AGENT_PID=$!

agent_pids() { # the agent and its children (the executor); $1: another agent's pid
    local p=${1:-$AGENT_PID} c
    echo "$p"
    for c in "/proc/$p"/task/*/children; do cat "$c" 2>/dev/null || true; done | tr ' ' '\n' | sed '/^$/d' | sort -un
}
is_active() {
    kill -0 "$AGENT_PID" 2>/dev/null || h_fail "the agent exited during start-up"
    [[ $(h_ctl agents -o json 2>/dev/null | jq -r --arg n "$AGENT" '.[] | select(.node == $n) | .state') == active ]]
}
has_executor() { (($(agent_pids | wc -l) >= 2)); }
h_wait "agent $AGENT active" 30 is_active
h_wait "agent $AGENT's executor running" 10 has_executor

# ---- the same agent without the flight recorder, beside it ----
OFF_PID=""
if [[ ${FOOTPRINT_FLIGHT:-1} == 1 ]]; then
    offdir=$H_DIR/agents/$AGENT-off
    mkdir -p "$offdir"
    chmod 755 "$offdir"
    sed -e "s|^node: .*|node: \"$AGENT-off\"|" -e "s|^state_dir: .*|state_dir: \"$offdir/state\"|" \
        "$adir/agent.yaml" >"$offdir/agent.yaml"
    printf 'flight_recorder:\n  enabled: false\n' >>"$offdir/agent.yaml"
    if "$VIGIL_BUILD/vigil-agent" -n -c "$offdir/agent.yaml" >/dev/null 2>"$offdir/config-check.txt"; then
        "$VIGIL_BUILD/vigil-agent" -c "$offdir/agent.yaml" >>"$offdir/agent.log" 2>&1 &
        OFF_PID=$!
        H_AGENT_PIDS["$AGENT-off"]=$OFF_PID
        off_active() {
            kill -0 "$OFF_PID" 2>/dev/null || h_fail "the agent without the flight recorder exited"
            [[ $(h_ctl agents -o json 2>/dev/null | jq -r --arg n "$AGENT-off" '.[] | select(.node == $n) | .state') == active ]]
        }
        h_wait "agent $AGENT-off (flight recorder off) active" 30 off_active
    else
        h_log "no flight recorder comparison: this build refuses flight_recorder: $(head -1 "$offdir/config-check.txt")"
    fi
fi

# ---- the reference: node_exporter with its default collectors, unprivileged like Debian's ----
NE_PORT=$(h_free_port)
ne_cmd=("$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT")
if command -v setpriv >/dev/null; then # exec()s, so $! is node_exporter itself
    ne_cmd=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${ne_cmd[@]}")
fi
(cd / && exec "${ne_cmd[@]}") >>"$H_DIR/node_exporter.log" 2>&1 &
NE_PID=$!
NE_URL=http://127.0.0.1:$NE_PORT/metrics
ne_up() {
    kill -0 "$NE_PID" 2>/dev/null || h_fail "node_exporter exited during start-up: $(tail -5 "$H_DIR/node_exporter.log")"
    curl -fsS -o /dev/null "$NE_URL" 2>/dev/null
}
h_wait "node_exporter answering on :$NE_PORT" 30 ne_up

# ---- measurement helpers ----
TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime+cutime+cstime summed over PIDs
    local total=0 pid s
    local -a f
    for pid in "$@"; do
        s=$(<"/proc/$pid/stat") || h_fail "process $pid vanished"
        s=${s##*) }
        read -ra f <<<"$s"
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}
sched_ns() { # on-CPU time in ns summed over the live threads of PIDS (a finer cross-check)
    local pid f total=0 ns
    for pid in "$@"; do
        for f in "/proc/$pid"/task/*/schedstat; do
            read -r ns _ <"$f" 2>/dev/null || continue
            total=$((total + ns))
        done
    done
    echo "$total"
}
mem_kib() { # "PSS ANON RSS" in KiB summed over PIDs
    local pid files=()
    for pid in "$@"; do files+=("/proc/$pid/smaps_rollup"); done
    awk '/^Rss:/ { r += $2 } /^Pss:/ { p += $2 } /^Pss_Anon:/ { pa += $2; has_pa = 1 }
         /^Anonymous:/ { an += $2 }
         END { printf "%d %d %d\n", p, (has_pa ? pa : an), r }' "${files[@]}"
}
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
sleep_until_us() {
    local d=$(($1 - $(now_us)))
    if ((d > 0)); then sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"; fi
}
scrape() { curl -fsS -o /dev/null --max-time 0.9 "$NE_URL" 2>/dev/null; }

# Once a second: scrape node_exporter; during the window also sample both processes' memory.
SCRAPES=0 FAILED=0 SAMPLES=0
A_PSS=0 A_ANON=0 A_RSS=0 N_PSS=0 N_ANON=0 A_PSS_MAX=0 N_PSS_MAX=0 O_PSS=0 O_ANON=0
tick_loop() { # SECONDS MEASURE(0|1)
    local n=$1 measure=$2 k t0 ok p a r
    t0=$(now_us)
    for ((k = 0; k < n; k++)); do
        sleep_until_us $((t0 + k * 1000000))
        append_logs
        if scrape; then ok=1; else ok=0; fi
        if ((measure)); then
            if ((ok)); then SCRAPES=$((SCRAPES + 1)); else FAILED=$((FAILED + 1)); fi
            read -r p a r < <(mem_kib "${PIDS[@]}")
            A_PSS=$((A_PSS + p)) A_ANON=$((A_ANON + a)) A_RSS=$((A_RSS + r))
            if ((p > A_PSS_MAX)); then A_PSS_MAX=$p; fi
            if [[ -n $OFF_PID ]]; then
                read -r p a r < <(mem_kib "${OFF_PIDS[@]}")
                O_PSS=$((O_PSS + p)) O_ANON=$((O_ANON + a))
            fi
            read -r p a r < <(mem_kib "$NE_PID")
            N_PSS=$((N_PSS + p)) N_ANON=$((N_ANON + a))
            if ((p > N_PSS_MAX)); then N_PSS_MAX=$p; fi
            SAMPLES=$((SAMPLES + 1))
        fi
    done
    sleep_until_us $((t0 + n * 1000000))
}

mapfile -t PIDS < <(agent_pids)
h_log "agent pids ${PIDS[*]} (uid $(awk '/^Uid:/ { print $2 }' "/proc/$AGENT_PID/status")), node_exporter pid $NE_PID; warm-up ${WARMUP}s, window ${WINDOW}s"
h_log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (other work on the machine skews CPU figures)"
tick_loop "$WARMUP" 0

mapfile -t PIDS < <(agent_pids)
OFF_PIDS=()
[[ -z $OFF_PID ]] || mapfile -t OFF_PIDS < <(agent_pids "$OFF_PID")
o_ns0=0 o_ns1=0
[[ -z $OFF_PID ]] || o_ns0=$(sched_ns "${OFF_PIDS[@]}")
stored0=$(h_metric vigil_stored_signals_total)
a_cpu0=$(cpu_ticks "${PIDS[@]}") x_cpu0=$(cpu_ticks "${PIDS[@]:1}")
n_cpu0=$(cpu_ticks "$NE_PID")
a_ns0=$(sched_ns "${PIDS[@]}") n_ns0=$(sched_ns "$NE_PID")
w0=$(now_us)
tick_loop "$WINDOW" 1
a_cpu1=$(cpu_ticks "${PIDS[@]}") x_cpu1=$(cpu_ticks "${PIDS[@]:1}")
n_cpu1=$(cpu_ticks "$NE_PID")
a_ns1=$(sched_ns "${PIDS[@]}") n_ns1=$(sched_ns "$NE_PID")
[[ -z $OFF_PID ]] || o_ns1=$(sched_ns "${OFF_PIDS[@]}")
w1=$(now_us)
stored1=$(h_metric vigil_stored_signals_total)
mapfile -t PIDS_END < <(agent_pids)
[[ ${PIDS[*]} == "${PIDS_END[*]}" ]] || h_log "warning: agent processes changed during the window: ${PIDS[*]} -> ${PIDS_END[*]}"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ne_series=$(curl -fsS "$NE_URL" | grep -vc '^#' || true)

# ---- the agent alone: on this machine its libraries (libzmq, libcrypto, libstdc++, ...) are
# also mapped by the coordinator and its PostgreSQL, which PSS counts as partly theirs; a node
# has neither. Stop them and look again: the same mappings, PSS as on a node. ----
h_stop_coordinator
sleep 1
off_alone_rss=0 off_alone_anon=0
if [[ -n $OFF_PID ]]; then # its RSS (sharing does not change it), then it goes: PSS alone is ours
    read -r _ off_alone_anon off_alone_rss < <(mem_kib "${OFF_PIDS[@]}")
    h_stop_agent "$AGENT-off"
    sleep 1
fi
read -r alone_pss alone_anon alone_rss < <(mem_kib "${PIDS[@]}")
top_maps=$(for p in "${PIDS[@]}"; do cat "/proc/$p/smaps"; done | awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anon]"; sub(".*/", "", name); next }
    /^Rss:/ { rss[name] += $2 }
    /^Pss:/ { pss[name] += $2 }
    /^Anonymous:/ { anon[name] += $2 }
    END { for (n in pss) if (pss[n] > 0) printf "%d %d %d %s\n", pss[n], rss[n], anon[n], n }' | sort -rn | head -14)

# ---- figures ----
cycles=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
h_log "window: ${cycles} s measured, $SCRAPES scrapes ($FAILED failed), $SAMPLES memory samples"
h_log "load average after: $load_after"
awk -v s="$SAMPLES" -v ap="$A_PSS" -v aa="$A_ANON" -v ar="$A_RSS" -v np="$N_PSS" -v na="$N_ANON" \
    -v apm="$A_PSS_MAX" -v npm="$N_PSS_MAX" -v nproc="${#PIDS[@]}" 'BEGIN {
    printf "memory  agent (%d processes): pss=%.0f KiB (max %d) anon=%.0f KiB rss_sum=%.0f KiB\n", nproc, ap / s, apm, aa / s, ar / s
    printf "memory  node_exporter:        pss=%.0f KiB (max %d) anon=%.0f KiB\n", np / s, npm, na / s
}'
awk -v p="$alone_pss" -v a="$alone_anon" -v r="$alone_rss" -v np="$N_PSS" -v s="$SAMPLES" 'BEGIN {
    printf "memory  agent alone (coordinator and PostgreSQL stopped): pss=%d KiB anon=%d KiB rss_sum=%d KiB, pss ratio %.2f\n", p, a, r, p / (np / s)
}'
awk -v tck="$TCK" -v a="$((a_cpu1 - a_cpu0))" -v n="$((n_cpu1 - n_cpu0))" -v c="$cycles" -v s="$SCRAPES" \
    -v x="$((x_cpu1 - x_cpu0))" -v ans="$((a_ns1 - a_ns0))" -v nns="$((n_ns1 - n_ns0))" \
    -v sig="$(awk -v x="$stored0" -v y="$stored1" 'BEGIN { print y - x }')" -v ser="$ne_series" 'BEGIN {
    printf "cpu     agent: %d ticks (executor %d) over %d cycles = %.2f ms per cycle (~%.0f signals per cycle stored)\n", a, x, c, a * 1000 / tck / c, sig / c
    printf "cpu     node_exporter: %d ticks over %d scrapes = %.2f ms per scrape (%d series per scrape)\n", n, s, (s ? n * 1000 / tck / s : 0), ser
    printf "cpu     by schedstat (ns, live threads): agent %.2f ms per cycle, node_exporter %.2f ms per scrape, ratio %.2f\n", ans / 1e6 / c, nns / 1e6 / s, (nns ? (ans / c) / (nns / s) : 0)
}'
echo "agent mappings, alone (KiB pss, KiB rss, KiB anon, mapping; summed over the agent's processes):"
awk '{ printf "  %7d %7d %7d  %s\n", $1, $2, $3, $4 }' <<<"$top_maps"
if [[ -n $OFF_PID ]]; then
    # rss_kib: VmRSS summed over the agent and its executor with the coordinator stopped (RSS,
    # unlike PSS, does not depend on the other agent sharing the same libraries); anon_kib: the
    # window's mean Pss_Anon; cpu_pct: schedstat over the window, percent of one CPU.
    awk -v on="$alone_rss" -v off="$off_alone_rss" -v ans="$((a_ns1 - a_ns0))" -v ons="$((o_ns1 - o_ns0))" \
        -v aa="$A_ANON" -v oa="$O_ANON" -v s="$SAMPLES" -v w="$((w1 - w0))" 'BEGIN {
        printf "flight: rss_kib_on=%d rss_kib_off=%d cpu_pct_on=%.2f cpu_pct_off=%.2f anon_kib_on=%d anon_kib_off=%d\n",
            on, off, ans / 1e3 / w * 100, ons / 1e3 / w * 100, aa / s + 0.5, oa / s + 0.5
    }'
fi
echo "targets: rss_ratio <= 0.5, anon_kib <= 4096, cpu_ratio <= 0.2 (printed, not enforced)"
((SCRAPES > 0)) || h_fail "no successful scrape of node_exporter"
# The verdict uses what a node would see: the agent's PSS alone (no coordinator sharing its
# libraries) and CPU from schedstat's nanoseconds (clock ticks are too coarse for ~4 ms cycles).
awk -v s="$SAMPLES" -v alone="$alone_pss" -v aa="$A_ANON" -v np="$N_PSS" \
    -v ans="$((a_ns1 - a_ns0))" -v nns="$((n_ns1 - n_ns0))" -v c="$cycles" -v sc="$SCRAPES" 'BEGIN {
    printf "footprint: rss_ratio=%.2f anon_kib=%d cpu_ratio=%.2f\n", alone / (np / s), aa / s + 0.5,
        (nns > 0 ? (ans / c) / (nns / sc) : 0)
}'
