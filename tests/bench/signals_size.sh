#!/usr/bin/env bash
# What signals cost on disk (docs/forensics.md "Retention and legal hold", retention.signals).
#
#   tests/bench/signals_size.sh [--seconds S] [--rows N]     (defaults 60 s, 500000 rows)
#
# 1. A real agent with the shipped intervals (deploy/config/agent.yaml: host, netstat and
#    processes every 10 s, its own signals every 10 s, batches every 5 s) runs for S seconds on
#    this machine: the samples it stored per second give rows per node per day.
# 2. N rows shaped like those samples (their names, units, labels; 1,000 agent ids; times spread
#    over one day) go into one day partition of signals; after VACUUM ANALYZE,
#    pg_total_relation_size of that partition (heap, TOAST and the (agent_id, name, ts) index)
#    divided by N is the bytes per row.
# Last line:
#   signals: bytes_per_row=B rows_per_day_1000_nodes=R gb_per_day=G
# (G = B x R / 10^9: what retention.signals must keep per day of history for 1,000 such nodes.)
# A node with more disks, interfaces, listeners, watched processes, log files or probes sends
# more: the per-node rate is printed before it (rows_per_node_per_s).
set -euo pipefail
SECONDS_RUN=60
ROWS=500000
while (($#)); do
    case $1 in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "signals_size.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done
[[ $SECONDS_RUN =~ ^[0-9]+$ && $SECONDS_RUN -ge 20 ]] || { echo "signals_size.sh: --seconds must be at least 20" >&2; exit 64; }
[[ $ROWS =~ ^[0-9]+$ && $ROWS -ge 1000 ]] || { echo "signals_size.sh: --rows must be at least 1000" >&2; exit 64; }
export H_HEARTBEAT=5s H_SELF_INTERVAL=10s H_BATCH_INTERVAL=5s H_LOG_LEVEL=warn
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
h_start_agent node-1 "collectors:
  host:
    interval: 10s
  netstat:
    interval: 10s
  processes:
    interval: 10s"
active() { [[ $(h_ctl agents -o json | jq '[.[] | select(.state == "active")] | length') == 1 ]]; }
h_wait "the agent active" 30 active
# Skip the first samples (start-up) and count a whole number of intervals.
sleep 12
start=$(h_sql "select extract(epoch from now())")
sleep "$SECONDS_RUN"
rows=$(h_sql "select count(*) from signals where ts >= to_timestamp($start)
              and ts < to_timestamp($start) + interval '$SECONDS_RUN seconds'
              and agent_id in (select id from agents where node = 'node-1')")
((rows > 0)) || h_fail "the agent stored no samples in ${SECONDS_RUN}s"
per_s=$(awk -v r="$rows" -v s="$SECONDS_RUN" 'BEGIN { printf "%.2f", r / s }')
h_log "agent with the shipped intervals: rows=$rows in ${SECONDS_RUN}s rows_per_node_per_s=$per_s"
h_stop_agent node-1

# N rows like the agent's into the partition of a day 5 days ahead (nothing else is there).
h_sql "select vigil_signals_partition((now() at time zone 'utc')::date + 5)" >/dev/null
part=signals_p$(h_sql "select to_char((now() at time zone 'utc')::date + 5, 'YYYYMMDD')")
h_sql "create temporary table shape as
         select row_number() over () - 1 as k, name, value, unit, labels, state, node, command_id
           from signals where agent_id in (select id from agents where node = 'node-1')
           order by ts limit 5000;
       insert into $part (agent_id, seq, name, value, unit, labels, ts, state, node, command_id)
       select 'ag-' || substr(md5((g % 1000)::text), 1, 24), g / 50 + 1, s.name,
              s.value + g % 7, s.unit, s.labels,
              ((now() at time zone 'utc')::date + 5)::timestamp at time zone 'utc'
                + (g::double precision / $ROWS) * interval '1 day',
              s.state, s.node, s.command_id
         from generate_series(0, $ROWS - 1) g
         join shape s on s.k = g % (select count(*) from shape)" >/dev/null
h_sql "vacuum analyze $part" >/dev/null
stored=$(h_sql "select count(*) from $part")
((stored == ROWS)) || h_fail "$stored rows in $part, expected $ROWS"
size=$(h_sql "select pg_total_relation_size('$part')")
heap=$(h_sql "select pg_relation_size('$part')")
index=$(h_sql "select pg_indexes_size('$part')")
h_log "partition $part: rows=$ROWS total_bytes=$size heap_bytes=$heap index_bytes=$index"
awk -v size="$size" -v n="$ROWS" -v per_s="$per_s" 'BEGIN {
    b = size / n; r = per_s * 86400 * 1000
    printf "signals: bytes_per_row=%.0f rows_per_day_1000_nodes=%.0f gb_per_day=%.1f\n", b, r, b * r / 1e9
}'
