#!/usr/bin/env bash
# Ingest benchmark: N simulated agents (one process, one CURVE connection each) push signal
# batches through the coordinator into PostgreSQL; compared in the same run with a raw COPY of
# the same number of rows of the same shape into the same table.
#
#   tests/bench/ingest.sh [--agents N] [--seconds S] [--operators K] [--ramp R]
#   tests/bench/ingest.sh [AGENTS] [SECONDS]      (defaults 1000 agents, 20 s)
#
# Before it: rules: samples=... (the rule engine saw every stored sample) evaluations_per_s=...
#   (condition evaluations per second of evaluation time, with the shipped runbooks loaded)
# Then: ingest: agents=N rows_per_s=X copy_rows_per_s=Y ratio=R lost=L coordinator_rss_mb=M
#   kb_per_agent=K (the coordinator process's peak resident memory over the run, and that peak
#   less its size before the first agent, per agent: connections, decoded batches, registry)
# With --operators K, the same ingest runs again (same coordinator, after the first) while K
# operators loop over `vigilctl signals` and `vigilctl incidents`, and the last line is
#   ingest_under_operators: rows_per_s=X baseline_rows_per_s=Y ratio=R operator_requests=Q
# --ramp R: the simulated agents connect R a second (default 0, all at once, up to 2,000 agents;
#   250 past that).
set -euo pipefail
AGENTS=${AGENTS:-1000}
DURATION=${DURATION:-20}
OPERATORS=0
RAMP=""
positional=()
while (($#)); do
    case $1 in
    --agents) AGENTS=$2; shift 2 ;;
    --seconds) DURATION=$2; shift 2 ;;
    --operators) OPERATORS=$2; shift 2 ;;
    --ramp) RAMP=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    --*) echo "ingest.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    *) positional+=("$1"); shift ;;
    esac
done
((${#positional[@]} > 0)) && AGENTS=${positional[0]}
((${#positional[@]} > 1)) && DURATION=${positional[1]}
SIGNALS_PER_MESSAGE=${SIGNALS_PER_MESSAGE:-50}
# Enrollment: past 2,000 agents at once, enrollments are answered too slowly on 2 cores and the
# simulator gives up on some; R connections a second then (vigil-sim --ramp).
[[ -n $RAMP ]] || RAMP=$((AGENTS > 2000 ? 250 : 0))
ENROLL=(--ramp "$RAMP" --enroll-seconds $((AGENTS / (RAMP > 0 ? RAMP : AGENTS) + 120)))
export H_HEARTBEAT=5s H_LOG_LEVEL=warn
source "$(dirname "$0")/../lib/harness.sh"
h_setup
# The shipped runbooks are loaded: every stored sample also goes through the rule engine (the
# simulator's host.cpu/mem/disk samples are ones the runbooks read).
h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\""

h_log "ingest: $AGENTS agents, $DURATION s, $SIGNALS_PER_MESSAGE signals per message"
status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$H_COORD_PID/status"; }
baseline_kib=$(status_kib VmRSS)
sim=$(h_sim ingest --secret-file "$H_DIR/enrollment.secret" --agents "$AGENTS" "${ENROLL[@]}" \
    --seconds "$DURATION" --signals-per-message "$SIGNALS_PER_MESSAGE" --window 4)
echo "$sim"
peak_kib=$(status_kib VmHWM)
rows_per_s=$(sed -n 's/.*rows_per_s=\([0-9]*\).*/\1/p' <<<"$sim")
rows=$(sed -n 's/.* rows=\([0-9]*\).*/\1/p' <<<"$sim")
lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' <<<"$sim")
stored=$(h_sql "select count(*) from signals where agent_id in (select id from agents where node like 'sim-%')")
[[ $stored == "$rows" ]] || h_log "warning: sim counted $rows acknowledged rows, the store holds $stored"
# The rule engine kept up when it was handed every stored sample; evaluations run on their own
# 250 ms cadence whatever the load.
rule_samples=$(h_metric vigil_rule_samples_total)
rule_matched=$(h_metric vigil_rule_samples_matched_total)
rule_evals=$(h_metric vigil_rule_evaluations_total)
rule_secs=$(h_metric vigil_rule_evaluation_seconds_total)
echo "rules: samples=$rule_samples stored=$stored matched=$rule_matched" \
    "samples_per_s=$(awk -v n="$rule_samples" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')" \
    "evaluations=$rule_evals evaluation_s=$rule_secs" \
    "evaluations_per_s=$(awk -v n="$rule_evals" -v s="$rule_secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
h_stop_coordinator

# The reference: the same number of rows, same shape, COPY'd into the same (now larger) table.
copy_file=$H_DIR/copy.tsv
awk -v n="$rows" -v per="$SIGNALS_PER_MESSAGE" 'BEGIN {
    split("host.cpu.busy_pct host.mem.used_pct host.disk.used_pct host.load.1m", names, " ")
    for (i = 0; i < n; i++)
        printf "ag-%016x\t%d\t%s\t%.1f\tpercent\t{\"node\": \"sim-%d\", \"mount\": \"/var\"}\t2026-01-01 00:00:00+00\n",
            i % 1000, int(i / per) + 1, names[i % 4 + 1], (i % 100) + 0.5, i % 1000
}' >"$copy_file"
chmod 644 "$copy_file"
h_start_coordinator # the private cluster again, for psql
start=$(date +%s.%N)
h_sql "\\copy signals (agent_id, seq, name, value, unit, labels, ts) from '$copy_file'" >/dev/null
end=$(date +%s.%N)
copy_rows_per_s=$(awk -v n="$rows" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
ratio=$(awk -v x="$rows_per_s" -v y="$copy_rows_per_s" 'BEGIN { printf "%.2f", x / y }')
echo "ingest: agents=$AGENTS rows_per_s=$rows_per_s copy_rows_per_s=$copy_rows_per_s ratio=$ratio lost=$lost" \
    "coordinator_rss_mb=$((peak_kib / 1024))" \
    "kb_per_agent=$(awk -v p="$peak_kib" -v b="$baseline_kib" -v n="$AGENTS" 'BEGIN { printf "%.1f", (p - b) * 1.024 / n }')"

# Operators during ingest: K loops of vigilctl listings against the same coordinator.
if ((OPERATORS > 0)); then
    h_log "ingest again with $OPERATORS operators listing signals and incidents"
    h_stop_coordinator # as in the first run: the shipped runbooks loaded
    h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\""
    operator_loop() { # N: until the stop file appears; counts requests in $H_DIR/ops.N
        local n=0
        while [[ ! -e $H_DIR/ops.stop ]]; do
            h_ctl signals -o json >/dev/null 2>&1 && n=$((n + 1))
            h_ctl incidents --status all -o json >/dev/null 2>&1 && n=$((n + 1))
        done
        echo "$n" >"$H_DIR/ops.$1"
    }
    op_pids=()
    for i in $(seq 1 "$OPERATORS"); do
        operator_loop "$i" &
        op_pids+=($!)
    done
    loaded=$(h_sim ingest --secret-file "$H_DIR/enrollment.secret" --agents "$AGENTS" \
        --seconds "$DURATION" --signals-per-message "$SIGNALS_PER_MESSAGE" --window 4 \
        --node-prefix simop)
    touch "$H_DIR/ops.stop"
    wait "${op_pids[@]}"
    echo "$loaded"
    loaded_rows_per_s=$(sed -n 's/.*rows_per_s=\([0-9]*\).*/\1/p' <<<"$loaded")
    requests=$(cat "$H_DIR"/ops.[0-9]* | awk '{ s += $1 } END { print s + 0 }')
    echo "ingest_under_operators: rows_per_s=$loaded_rows_per_s baseline_rows_per_s=$rows_per_s" \
        "ratio=$(awk -v x="$loaded_rows_per_s" -v y="$rows_per_s" 'BEGIN { printf "%.2f", x / y }')" \
        "operator_requests=$requests"
fi
