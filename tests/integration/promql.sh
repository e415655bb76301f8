#!/usr/bin/env bash
# A real Prometheus answers a runbook's PromQL symptom (Vigil issue 4).
#   Prometheus (Debian's prometheus) scrapes a real node exporter and itself every second. A
#   runbook's symptom is sum(up{job="node"}) below 1: killing the exporter opens an incident for
#   that runbook, restarting it clears the symptom (timeline: symptom, state ok). Two more
#   symptoms are wrong on purpose: `up` returns two series, and one query does not parse; each
#   is counted under its reason and logged once, not every interval. A SIGHUP reload keeps the
#   poller going (it copies the queries). With Prometheus stopped, refused queries are counted
#   and the coordinator stays healthy.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

PROM_BIN=${PROM_BIN:-/usr/bin/prometheus}
NE_BIN=${NE_BIN:-/usr/bin/prometheus-node-exporter}
[[ -x $PROM_BIN ]] || h_fail "$PROM_BIN not found (Debian package prometheus)"
[[ -x $NE_BIN ]] || h_fail "$NE_BIN not found (Debian package prometheus-node-exporter)"

PROM_PID="" NE_PID=""
stop_pid() { # stop_pid PID
    [[ -n $1 ]] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the coordinator
    stop_pid "$NE_PID"
    stop_pid "$PROM_PID"
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- the target: a node exporter with one cheap collector ------------------------------------
NE_PORT=$(h_free_port)
start_exporter() {
    "$NE_BIN" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults \
        --collector.loadavg >>"$H_DIR/node-exporter.log" 2>&1 &
    NE_PID=$!
    exporter_up() {
        kill -0 "$NE_PID" 2>/dev/null || h_fail "node exporter exited: $(tail -5 "$H_DIR/node-exporter.log")"
        curl -fsS -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" 2>/dev/null
    }
    h_wait "node exporter answering" 10 exporter_up
}
start_exporter

# ---- Prometheus, scraping it and itself every second -----------------------------------------
PROM_PORT=$(h_free_port)
PROM=http://127.0.0.1:$PROM_PORT
mkdir -p "$H_DIR/prom/data"
cat >"$H_DIR/prom/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:$NE_PORT"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$PROM_PORT"]}]
YAML
"$PROM_BIN" --config.file="$H_DIR/prom/prometheus.yml" --storage.tsdb.path="$H_DIR/prom/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >>"$H_DIR/prom/prometheus.log" 2>&1 &
PROM_PID=$!
prom_ready() {
    kill -0 "$PROM_PID" 2>/dev/null || h_fail "prometheus exited: $(tail -5 "$H_DIR/prom/prometheus.log")"
    curl -fsS -o /dev/null "$PROM/-/ready" 2>/dev/null
}
h_wait "prometheus ready" 30 prom_ready
prom_says() { # prom_says QUERY JQ-FILTER
    curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null | jq -e "$2" >/dev/null
}
h_wait "prometheus scraped the exporter and itself" 20 \
    prom_says 'sum(up{job="node"}) + count(up)' '.data.result[0].value[1] == "3"'

# ---- the runbook and the coordinator ---------------------------------------------------------
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/exporter-down.yaml" <<'YAML'
id: exporter-down
title: Node exporter down
doc: "docs/runbook-format.md"
severity: SEV2
symptoms:
  - id: node-targets-down
    promql: {query: 'sum(up{job="node"})', interval: 1s}
    below: 1
  # Wrong on purpose: two series (node and prometheus), and a query that does not parse.
  - id: every-target
    promql: {query: 'up', interval: 1s}
    below: 1
  - id: broken-query
    promql: {query: 'sum(up{job=', interval: 1s}
    below: 1
YAML
SIGNAL=promql.exporter-down.node-targets-down

h_start_coordinator "runbooks:
  dir: \"$RB\"
prometheus:
  url: \"$PROM/\"
  timeout: 2s"
grep -q "prometheus: PromQL symptoms evaluated against $PROM/" "$H_DIR/coordinator.log" ||
    h_fail "the coordinator does not say it polls Prometheus"

metric_at_least() { # metric_at_least NAME MIN
    local v
    v=$(h_metric "$1")
    [[ ${v%.*} -ge $2 ]]
}
h_wait "answered PromQL queries counted" 15 metric_at_least vigil_promql_queries_total 3
h_wait "several series and the parse error counted three times each" 15 \
    eval 'metric_at_least "vigil_promql_errors_total{reason=\"series\"}" 3 &&
          metric_at_least "vigil_promql_errors_total{reason=\"query\"}" 3'
lines=$(grep -c "promql signal=promql.exporter-down.every-target failed reason=series: query returns 2 series, a symptom needs one number" \
    "$H_DIR/coordinator.log" || true)
[[ $lines == 1 ]] || h_fail "the two-series answer should be logged once, not every interval (logged $lines times)"
lines=$(grep -c "promql signal=promql.exporter-down.broken-query failed reason=query: Prometheus: bad_data" \
    "$H_DIR/coordinator.log" || true)
[[ $lines == 1 ]] || h_fail "the parse error should be logged once with Prometheus's reason (logged $lines times)"
[[ $(h_ctl incidents -o json | jq length) == 0 ]] ||
    h_fail "incidents open while every target is up: $(h_ctl incidents -o json)"
h_pass "queries answered; two series and a parse error counted by reason, logged once each; no incident"

# A reload swaps the set (the old one is freed): the poller must keep its own copy.
kill -HUP "$H_COORD_PID"
h_wait "runbooks reloaded" 10 grep -q "runbooks reloaded: 1 from $RB" "$H_DIR/coordinator.log"
before=$(h_metric vigil_promql_queries_total)
h_wait "queries answered after the reload" 10 metric_at_least vigil_promql_queries_total $((${before%.*} + 2))
h_healthz || h_fail "the coordinator should be healthy after the reload"
lines=$(grep -c "promql signal=promql.exporter-down.every-target failed reason=series" \
    "$H_DIR/coordinator.log" || true)
[[ $lines == 1 ]] || h_fail "an unchanged query's known failure should not be logged again after a reload (logged $lines times)"
h_pass "SIGHUP: the reloaded queries are polled; known failures not logged again"

# ---- the fault: the exporter killed -> an incident; back -> the symptom clears ---------------
open_of() { h_ctl incidents -o json | jq -c '[.[] | select(.runbook == "exporter-down")]'; }
one_open() { [[ $(open_of | jq length) == 1 ]]; }
t0=$SECONDS
kill -KILL "$NE_PID"
wait "$NE_PID" 2>/dev/null || true
NE_PID=""
h_wait "an exporter-down incident" 15 one_open
inc=$(open_of)
jq -e '.[0].severity == "SEV2" and .[0].state == "detected"' <<<"$inc" >/dev/null ||
    h_fail "expected a detected SEV2 incident: $inc"
id=$(jq -r '.[0].id' <<<"$inc")
grep -q "symptom runbook=exporter-down symptom=node-targets-down .*state=critical" "$H_DIR/coordinator.log" ||
    h_fail "the symptom's transition to critical is not logged"
h_pass "node exporter killed -> exporter-down incident $id (SEV2) $((SECONDS - t0))s later"

symptom_ok() {
    [[ $(h_sql "SELECT count(*) FROM incident_events WHERE incident_id = $id AND kind = 'symptom'
                AND data->>'state' = 'ok'") -ge 1 ]]
}
t0=$SECONDS
start_exporter
h_wait "the symptom clears (timeline: symptom, state ok)" 15 symptom_ok
h_pass "node exporter back -> symptom ok on incident $id $((SECONDS - t0))s later"

# ---- Prometheus down: counted, logged once, the coordinator healthy --------------------------
refused_before=$(h_metric 'vigil_promql_errors_total{reason="refused"}')
stop_pid "$PROM_PID"
PROM_PID=""
h_wait "refused queries counted (three queries, three intervals)" 15 \
    metric_at_least 'vigil_promql_errors_total{reason="refused"}' $((${refused_before%.*} + 9))
lines=$(grep -c "promql signal=$SIGNAL failed reason=refused" "$H_DIR/coordinator.log" || true)
[[ $lines == 1 ]] || h_fail "a refused connection should be logged once per query, not every interval (logged $lines times)"
kill -0 "$H_COORD_PID" 2>/dev/null || h_fail "the coordinator exited with Prometheus down"
h_healthz || h_fail "the coordinator should stay healthy with Prometheus down"
h_pass "Prometheus stopped: refused queries counted, logged once, coordinator healthy"

# A prompt stop even while queries fail.
t0=$SECONDS
h_stop_coordinator
((SECONDS - t0 <= 5)) || h_fail "the coordinator took $((SECONDS - t0))s to stop"
h_pass "the coordinator stopped in $((SECONDS - t0))s"

# ---- no prometheus.url: one warning at load naming the symptoms that never fire --------------
h_start_coordinator "runbooks:
  dir: \"$RB\""
warning="promql: 3 runbook symptoms with a PromQL query (exporter-down/node-targets-down,exporter-down/every-target,exporter-down/broken-query) never fire without prometheus.url"
[[ $(grep -cF "$warning" "$H_DIR/coordinator.log") == 1 ]] ||
    h_fail "expected one warning naming the unpolled PromQL symptoms: $(grep promql: "$H_DIR/coordinator.log" | tail -3)"
h_pass "PromQL symptoms against a real Prometheus"
