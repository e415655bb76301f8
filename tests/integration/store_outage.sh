#!/usr/bin/env bash
# The coordinator's PostgreSQL going away and coming back, while an agent sends (issue 19,
# "Faults"). Each scenario prints `faults: scenario=... sent=N stored=N lost=0 duplicated=0`.
#
# 1. embedded-restart: the private cluster's postmaster is SIGKILLed. The coordinator owns that
#    cluster and restarts it by itself (it used to leave it dead), counted and logged.
# 2. store-outage: an external PostgreSQL (store.url) is stopped with pg_ctl for 25 s and started
#    again. Ingest pauses, /healthz answers 503 while it is down and 200 after, the agent's
#    spool drains, every seq it made is stored once. The outage is logged once, summarised,
#    and its end logged once: it used to be a warning per connection per retry (97 identical
#    lines in 25 s).
source "$(dirname "$0")/../lib/harness.sh"

OUTAGE_S=${VIGIL_OUTAGE_SECONDS:-25}
MAX_WARNINGS=6 # warn and error lines the coordinator may write for one outage
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $PG_BIN ]]; then
    echo "store_outage: no PostgreSQL server binaries under /usr/lib/postgresql; skipped" >&2
    exit 77
fi

h_setup

# The external cluster of scenario 2: private to this test, on a Unix socket in its directory.
# PostgreSQL refuses to run as root.
EXT=$H_DIR/extpg
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ext_ctl() { as_postgres "$PG_BIN/pg_ctl" -D "$EXT/data" -l "$EXT/postgres.log" -w -t 60 "$@" >/dev/null; }
ext_start() { ext_ctl -o "-c listen_addresses='' -c unix_socket_directories='$EXT' -c port=5432" start; }
ext_sql() { psql -X -q -A -t -h "$EXT" -p 5432 -U vigil -d vigil -v ON_ERROR_STOP=1 -c "$1"; }
cleanup() {
    local status=$?
    [[ -f $EXT/data/postmaster.pid ]] && { ext_ctl -m immediate stop || true; }
    set +e # h_cleanup must run whatever happens here, and it takes the test's status from $?
    (exit "$status")
    h_cleanup
}
trap cleanup EXIT

healthz_code() { curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$H_PORT_HTTP/healthz" 2>/dev/null || true; }
healthz_is() { [[ $(healthz_code) == "$1" ]]; }
agent_active() { h_ctl agents -o json | jq -e --arg n "$1" 'any(.[]; .node == $n and .state == "active")' >/dev/null; }
agent_id() { h_ctl agents -o json | jq -r --arg n "$1" '.[] | select(.node == $n) | .id'; }
spool_empty() { ! ls "$H_DIR/agents/$1/state/spool/"*.seg >/dev/null 2>&1; }
# stored_through SQL ID SEQ: the agent's messages 1..SEQ are all in the store.
stored_through() {
    [[ $($1 "select count(distinct seq) from agent_messages where agent_id = '$2' and seq between 1 and $3") == "$3" ]]
}
# The coordinator's log from line $1 on: its warnings and errors, and how many lines match $2.
log_since() { tail -n +"$1" "$H_DIR/coordinator.log"; }
warnings_since() { log_since "$1" | grep -E ' (warn|error): ' || true; }
count_since() { log_since "$1" | grep -c -E "$2" || true; }

# check_warnings FROM WHAT: at most MAX_WARNINGS warn/error lines since line FROM.
check_warnings() {
    local lines n
    lines=$(warnings_since "$1")
    n=$(grep -c . <<<"$lines" || true)
    h_log "$2: $n warning lines in the coordinator's log"
    ((n <= MAX_WARNINGS)) || { echo "$lines" | head -40 >&2; h_fail "$2: $n warning lines (at most $MAX_WARNINGS)"; }
}

# account SCENARIO NAME SQL: once the agent has stopped producing and its spool is empty, every
# seq it ever made (1..h_spool_made) is stored exactly once.
account() {
    local scenario=$1 name=$2 sql=$3 id sent rows distinct in_range dup_samples
    # Stop producing: restart the agent with its self signals slowed right down, so only the
    # spool is left to drain (as crash.sh does).
    h_stop_agent "$name"
    H_SELF_INTERVAL=1h h_start_agent "$name"
    id=$(agent_id "$name")
    # The restarted agent may still send what it measures as it starts (slow under a sanitizer):
    # count only when the highest seq it made did not move while the store was read.
    local tries before
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        h_wait "$name's spool drained" 60 spool_empty "$name"
        before=$(h_spool_made "$name")
        sent=$before
        read -r rows distinct < <($sql "select count(*), count(distinct seq) from agent_messages where agent_id = '$id'" | tr '|' ' ')
        in_range=$($sql "select count(distinct seq) from agent_messages where agent_id = '$id' and seq between 1 and $sent")
        # A message stored twice would leave the same sample (seq, name, labels, time) twice.
        dup_samples=$($sql "select count(*) from (select 1 from signals where agent_id = '$id'
            group by seq, name, labels, ts having count(*) > 1) d")
        [[ $(h_spool_made "$name") == "$before" ]] && spool_empty "$name" && break
        sleep 1
    done
    local lost=$((sent - in_range)) duplicated=$((rows - distinct + dup_samples))
    echo "faults: scenario=$scenario sent=$sent stored=$in_range lost=$lost duplicated=$duplicated"
    ((sent > 30)) || h_fail "$scenario: $name made only $sent messages: the test did not exercise much"
    ((lost == 0)) || h_fail "$scenario: $lost of $name's messages 1..$sent are not stored"
    ((distinct == in_range)) || h_fail "$scenario: $((distinct - in_range)) stored seqs the agent never made"
    ((duplicated == 0)) || h_fail "$scenario: $duplicated messages or samples stored twice"
}

# ---- 1. the embedded cluster's postmaster SIGKILLed: the coordinator restarts it ----

h_start_coordinator
H_SELF_INTERVAL=200ms h_start_agent node-a
h_wait "node-a active" 30 agent_active node-a
id_a=$(agent_id node-a)
h_wait "node-a's first messages stored" 30 stored_through h_sql "$id_a" 20

pgdata=$(readlink -f "$H_DIR/coord/pgdata")
old_pid=$(head -1 "$pgdata/postmaster.pid")
mark=$(($(wc -l <"$H_DIR/coordinator.log") + 1))
h_log "embedded-restart: SIGKILL the postmaster pid=$old_pid"
kill -KILL "$old_pid"
restarted() {
    local pid
    pid=$(head -1 "$pgdata/postmaster.pid" 2>/dev/null) || return 1
    [[ -n $pid && $pid != "$old_pid" ]] && kill -0 "$pid" 2>/dev/null &&
        (($(h_metric vigil_embedded_pg_restarts_total) >= 1)) && healthz_is 200
}
h_wait "the coordinator restarted its cluster and is healthy" 60 restarted
h_log "embedded-restart: running again, restarts=$(h_metric vigil_embedded_pg_restarts_total)"
h_wait "node-a's messages stored again" 30 stored_through h_sql "$id_a" "$(h_spool_made node-a)"
[[ $(h_metric vigil_store_outages_total) == 1 ]] ||
    h_fail "embedded-restart: vigil_store_outages_total is $(h_metric vigil_store_outages_total), expected 1"
[[ $(count_since "$mark" 'store: private cluster died') == 1 ]] ||
    h_fail "embedded-restart: the postmaster's death is not logged once"
check_warnings "$mark" embedded-restart
account embedded-restart node-a h_sql
h_stop_agent node-a
h_stop_coordinator

# ---- 2. an external PostgreSQL stopped for OUTAGE_S seconds and started again ----

mkdir -m 0700 "$EXT"
[[ $(id -u) == 0 ]] && chown postgres: "$EXT"
as_postgres "$PG_BIN/initdb" -D "$EXT/data" -U vigil --auth=trust -E UTF8 --no-instructions >/dev/null
ext_start
psql -X -q -h "$EXT" -p 5432 -U vigil -d postgres -c "create database vigil" >/dev/null
h_start_coordinator "store:
  url: \"host=$EXT port=5432 user=vigil dbname=vigil\""
H_SELF_INTERVAL=200ms h_start_agent node-b
h_wait "node-b active" 30 agent_active node-b
id_b=$(agent_id node-b)
h_wait "node-b's first messages stored" 30 stored_through ext_sql "$id_b" 20

mark=$(($(wc -l <"$H_DIR/coordinator.log") + 1))
h_log "store-outage: pg_ctl stop, for ${OUTAGE_S}s"
ext_ctl -m fast stop
stopped_at=$SECONDS
h_wait "/healthz 503 once the store is gone" 5 healthz_is 503
sleep 3
# An operator's request meanwhile is told the store is unavailable, through admin's own
# connection: one more connection retrying, and still no more lines in the log.
h_capture ctl_out _ h_ctl signals
[[ $ctl_out == *"store is unavailable"* ]] ||
    h_fail "store-outage: vigilctl signals during the outage answered: $ctl_out"
stored_during=$(h_metric vigil_stored_messages_total)
made_during=$(h_spool_made node-b)
left=$((OUTAGE_S - (SECONDS - stopped_at)))
((left <= 0)) || sleep "$left"
healthz_is 503 || h_fail "store-outage: /healthz answers $(healthz_code) while the store is down"
[[ $(h_metric vigil_stored_messages_total) == "$stored_during" ]] ||
    h_fail "store-outage: messages counted as stored while the store was down"
[[ $(h_metric vigil_store_up) == 0 ]] || h_fail "store-outage: vigil_store_up is not 0 while the store is down"
# The agent kept producing into its spool: there is something to drain.
((($(h_spool_made node-b) - made_during) > 20)) || h_fail "store-outage: node-b did not keep producing"
h_log "store-outage: pg_ctl start after $((SECONDS - stopped_at))s"
ext_start
h_wait "/healthz 200 once the store is back" 20 healthz_is 200
backlog=$(h_spool_made node-b)
h_wait "node-b's spool drained up to seq $backlog" 60 stored_through ext_sql "$id_b" "$backlog"

[[ $(h_metric vigil_store_outages_total) == 1 ]] ||
    h_fail "store-outage: vigil_store_outages_total is $(h_metric vigil_store_outages_total), expected 1"
[[ $(h_metric vigil_store_up) == 1 ]] || h_fail "store-outage: vigil_store_up is not 1 after the outage"
[[ $(count_since "$mark" 'store: database unreachable') == 1 ]] ||
    h_fail "store-outage: the outage's start is not logged once"
[[ $(count_since "$mark" 'store: database reachable again after=') == 1 ]] ||
    h_fail "store-outage: the outage's end is not logged once"
check_warnings "$mark" store-outage
account store-outage node-b ext_sql
h_pass "the store's outages lost nothing, were logged in a few lines, and the embedded cluster came back by itself"
