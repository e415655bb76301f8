#!/usr/bin/env bash
# Detection benchmark: fault -> incident opened. nginx (the application) is killed, master and
# workers, TRIALS times; each kill is measured twice, on the same fault:
#   vigil   an agent health-checks nginx every 1 s and watches its master process (by pidfile);
#           latency = the application-down incident row's opened_at - the kill time
#   prom    Prometheus (scrape and evaluation every 1 s) + blackbox exporter (probing nginx) +
#           Alertmanager (group_wait 0s) notifying the coordinator's webhook, alert rule
#           probe_success == 0 (for: 0s); latency = the firing notification's received_at in
#           alert_notifications (when the webhook stored alert.NginxDown) - the kill time
# Both are wall-clock timestamps taken on this machine (the coordinator's clock and
# PostgreSQL's now()), so the polling granularity does not enter the figures.
#
#   tests/bench/detect.sh [TRIALS]       (default 20; or TRIALS= in the environment)
#   VIGIL_BUILD=build-dir                the binaries to measure (default build/)
#
# The agent runs with the shipped batch_interval (5s): a threshold crossing goes at once.
# Each kill waits a random 0-1 s after the system is quiet, so it falls at a random phase of
# both systems' 1 s cycles.
#
# Also measured on every kill: the first page reaching the on-call person's webhook (a local
# receiver), through the escalation engine and the notifier.
#
# Last line: detect: vigil_p50_ms=A vigil_p99_ms=B prom_p50_ms=C prom_p99_ms=D p50_ratio=X
# p99_ratio=Y page_p50_ms=E page_p99_ms=F  (ratios prom / vigil; percentiles nearest-rank)
# Targets (the design's), printed, never enforced: vigil p50 <= 300 ms, p99 <= 1000 ms.
set -euo pipefail
TRIALS=${1:-${TRIALS:-20}}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
BLACKBOX=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}
ALERTMANAGER=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
export H_HEARTBEAT=1s H_LOG_LEVEL=warn H_SELF_INTERVAL=10s H_BATCH_INTERVAL=5s
source "$(dirname "$0")/../lib/harness.sh"

[[ $TRIALS =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [TRIALS]" >&2; exit 64; }
for bin in "$PROMETHEUS:prometheus" "$BLACKBOX:prometheus-blackbox-exporter" "$ALERTMANAGER:prometheus-alertmanager"; do
    [[ -x ${bin%%:*} ]] || { echo "${bin%%:*} not found (apt-get install ${bin#*:})" >&2; exit 69; }
done

h_setup

# The servers this bench starts are stopped before the harness's own cleanup, which keeps the
# exit status it is given.
declare -A BG_PID=()
NGINX_PID=""
stop_bg() { # stop_bg NAME
    local pid=${BG_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BG_PID[$1]=""
}
kill_nginx() { # SIGKILL the master and its workers at once: no graceful exit, no health check
    [[ -n $NGINX_PID ]] || return 0
    local workers
    workers=$(cat "/proc/$NGINX_PID"/task/*/children 2>/dev/null || true)
    KILLED=$EPOCHREALTIME # the fault's time: taken after the workers are found, just before
    # shellcheck disable=SC2086 # the workers' pids, one word each
    kill -KILL "$NGINX_PID" $workers 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}
on_exit() {
    local status=$? name
    set +e # a failing run must still reach h_cleanup, which stops the agent and coordinator
    kill_nginx
    for name in "${!BG_PID[@]}"; do stop_bg "$name"; done
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- runbooks: the shipped ones, application-down reopening nothing ----------------------------
# reopen_window 30m -> 0s: otherwise every kill after the first would reopen the first trial's
# resolved incident instead of opening a new row, and there would be no opened_at to measure.
# Everything else (symptoms, levels, for: durations, verify) is the shipped runbook.
RB=$H_DIR/runbooks
mkdir -p "$RB"
cp "$VIGIL_SRC"/runbooks/*.yaml "$RB"/
sed -i 's/^reopen_window: .*$/reopen_window: 0s/' "$RB/application-down.yaml"
grep -q '^reopen_window: 0s$' "$RB/application-down.yaml" ||
    h_fail "application-down.yaml has no top-level reopen_window: the shipped runbook changed shape"

# ---- nginx: the application ----------------------------------------------------------------
NGX=$H_DIR/nginx
NGINX_PORT=$(h_free_port)
h_nginx_conf "$NGX" off "    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /healthz { return 200 \"ok\\n\"; }
    }"
NGINX_URL=http://127.0.0.1:$NGINX_PORT/healthz
nginx_up() {
    kill -0 "$NGINX_PID" 2>/dev/null || h_fail "nginx exited: $(tail -5 "$NGX/logs/error.log" "$NGX/logs/stderr.log")"
    curl -fsS -o /dev/null "$NGINX_URL" 2>/dev/null
}
start_nginx() {
    /usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" >>"$NGX/logs/stderr.log" 2>&1 &
    NGINX_PID=$!
    h_wait "nginx answering" 10 nginx_up
}
start_nginx

# ---- Vigil: the coordinator (with the webhook) and one agent ----------------------------------
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$TOKEN" >"$H_DIR/alertmanager.token")
# The on-call person's pager: a local HTTP receiver recording when each page arrives.
python3 "$VIGIL_SRC/tests/tools/http_sink.py" --log "$H_DIR/pages.jsonl" --port-file "$H_DIR/pager.port" \
    >"$H_DIR/pager.out" 2>&1 &
BG_PID[pager]=$!
h_wait "the pager receiver listening" 10 test -s "$H_DIR/pager.port"
PAGER=http://127.0.0.1:$(cat "$H_DIR/pager.port")
h_start_coordinator "runbooks:
  dir: \"$RB\"
alertmanager:
  token_file: \"$H_DIR/alertmanager.token\"
paging:
  contacts:
    - {name: oncall, webhook: \"$PAGER/oncall\"}
  schedules:
    - {name: primary, timezone: UTC, handover: \"Mon 09:00\", start: \"2026-01-05\", users: [oncall]}
  policies:
    - {name: default, levels: [{delay: 0s, targets: [\"schedule:primary\"]}]}
    - {name: security, levels: [{delay: 0s, targets: [\"schedule:primary\"]}]}"
# Host and netstat off: nginx coming back is a new listener (a security symptom of its own), and
# the machine's own CPU and disks are not under test.
agent_yaml=$(cat <<YAML
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes:
    interval: 1s
    watch:
      - {name: nginx, pidfile: "$NGX/nginx.pid"}
  http:
    interval: 1s
    timeout: 1s
    targets:
      - {name: app, url: "$NGINX_URL"}
YAML
)
NODE=web1
h_start_agent "$NODE" "$agent_yaml"
out=$("$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/agents/$NODE/agent.yaml" 2>&1) ||
    h_fail "vigil-agent refuses the benchmark's configuration: $out"

# latest NAME LABEL=VALUE: the latest value of one of the agent's series (empty when none).
latest() {
    h_sql "SELECT l.value FROM signal_latest l JOIN agents a ON a.id = l.agent_id
            WHERE a.node = '$NODE' AND l.name = '$1' AND l.labels->>'${2%%=*}' = '${2#*=}'"
}
healthy() { # both of the agent's views of nginx say up, for the nginx running now
    [[ $(latest proc.up name=nginx) == 1 && $(latest proc.pid name=nginx) == "$NGINX_PID" &&
        $(latest http.up target=app) == 1 ]]
}
h_wait "the agent reporting nginx healthy" 60 healthy

# ---- Prometheus + blackbox exporter + Alertmanager --------------------------------------------
P=$H_DIR/prom
mkdir -p "$P/tsdb" "$P/am"
BB_PORT=$(h_free_port) PROM_PORT=$(h_free_port) AM_PORT=$(h_free_port)
cat >"$P/blackbox.yml" <<YAML
modules:
  http_2xx:
    prober: http
    timeout: 1s
    http:
      preferred_ip_protocol: ip4
YAML
cat >"$P/rules.yml" <<YAML
groups:
  - name: detect
    interval: 1s
    rules:
      - alert: NginxDown
        expr: probe_success == 0
        for: 0s
        labels:
          node: "$NODE"
          severity: critical
YAML
cat >"$P/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["$P/rules.yml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:$AM_PORT"]}]
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs: [{targets: ["$NGINX_URL"]}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: "127.0.0.1:$BB_PORT"}
YAML
# group_interval 1s: a resolve, then the next trial's firing, each notify within a second;
# a firing alert is notified again only after the resolve (its firing set changed).
cat >"$P/am/alertmanager.yml" <<YAML
route:
  receiver: vigil
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vigil
    webhook_configs:
      - url: "http://127.0.0.1:$H_PORT_HTTP/api/v1/alerts"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: "$H_DIR/alertmanager.token"
YAML
(cd "$P" && exec "$BLACKBOX" --config.file="$P/blackbox.yml" --web.listen-address="127.0.0.1:$BB_PORT") \
    >>"$P/blackbox.log" 2>&1 &
BG_PID[blackbox]=$!
(cd "$P/am" && exec "$ALERTMANAGER" --config.file="$P/am/alertmanager.yml" --storage.path="$P/am" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=) >>"$P/alertmanager.log" 2>&1 &
BG_PID[alertmanager]=$!
(cd "$P" && exec "$PROMETHEUS" --config.file="$P/prometheus.yml" --storage.tsdb.path="$P/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT") >>"$P/prometheus.log" 2>&1 &
BG_PID[prometheus]=$!
ready() { # ready NAME URL
    kill -0 "${BG_PID[$1]}" 2>/dev/null || h_fail "$1 exited: $(tail -5 "$P/$1.log")"
    curl -fsS -o /dev/null "$2" 2>/dev/null
}
h_wait "blackbox exporter ready" 30 ready blackbox "http://127.0.0.1:$BB_PORT/metrics"
h_wait "alertmanager ready" 30 ready alertmanager "http://127.0.0.1:$AM_PORT/-/ready"
h_wait "prometheus ready" 60 ready prometheus "http://127.0.0.1:$PROM_PORT/-/ready"
probe_ok() {
    curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=probe_success' |
        jq -e '.data.result | length == 1 and .[0].value[1] == "1"' >/dev/null
}
h_wait "prometheus seeing probe_success 1" 30 probe_ok

# ---- trials -----------------------------------------------------------------------------------
# The NginxDown alert's fingerprints, as the webhook stored them (the same every trial).
AM_FP="SELECT labels->>'fingerprint' FROM signals WHERE agent_id = 'alertmanager' AND name = 'alert.NginxDown'"
vigil_opened() { # vigil_opened KILL_EPOCH LAST_ID -> "ID OPENED_EPOCH FINGERPRINT" of the trial's incident
    h_sql "SELECT id, extract(epoch FROM opened_at), fingerprint FROM incidents
            WHERE runbook = 'application-down' AND id > $2 AND opened_at >= to_timestamp($1) - interval '1 ms'
            ORDER BY id LIMIT 1" | tr '|' ' '
}
prom_notified() { # prom_notified KILL_EPOCH -> "RECEIVED_EPOCH STARTS_EPOCH" of the trial's firing notification
    h_sql "SELECT extract(epoch FROM received_at), extract(epoch FROM at) FROM alert_notifications
            WHERE status = 'firing' AND received_at >= to_timestamp($1) AND fingerprint IN ($AM_FP)
            ORDER BY received_at LIMIT 1" | tr '|' ' '
}
prom_quiet() { # no firing alert.NginxDown: nothing fired yet, or its resolve was stored last
    [[ $(h_sql "SELECT coalesce((SELECT status FROM alert_notifications WHERE fingerprint IN ($AM_FP)
                 ORDER BY received_at DESC LIMIT 1), 'none')") != firing ]]
}
open_incidents() { h_sql "SELECT count(*) FROM incidents WHERE state IN ('detected', 'acknowledged', 'mitigated')"; }
no_open_incident() { [[ $(open_incidents) == 0 ]]; }

# paged_at ID: when the pager received the incident's first page (empty until then).
paged_at() {
    jq -r --argjson id "$1" 'select(.path == "/oncall") | (.body | fromjson) as $b
        | select($b.incident_id == $id and $b.kind == "page") | .time' "$H_DIR/pages.jsonl" 2>/dev/null | head -1
}
VIGIL_MS=() PROM_MS=() PROM_ACTIVE_MS=() PAGE_MS=()
LAST_ID=$(h_sql "SELECT coalesce(max(id), 0) FROM incidents")
[[ $(open_incidents) == 0 ]] || h_fail "incidents open before any fault: $(h_ctl incidents)"
h_log "detect: $TRIALS trials; nginx :$NGINX_PORT, blackbox :$BB_PORT, prometheus :$PROM_PORT, alertmanager :$AM_PORT"
for ((trial = 1; trial <= TRIALS; trial++)); do
    h_wait "trial $trial: vigil quiet (nginx healthy, no open incident)" 30 no_open_incident
    h_wait "trial $trial: the agent reporting nginx healthy" 30 healthy
    h_wait "trial $trial: prometheus quiet (probe_success 1, NginxDown resolved)" 30 probe_ok
    h_wait "trial $trial: NginxDown's resolve stored" 30 prom_quiet
    sleep "0.$(printf '%03d' $((RANDOM % 1000)))"

    kill_nginx
    killed=$KILLED
    deadline=$((SECONDS + 30))
    v="" p=""
    while [[ -z $v || -z $p ]]; do
        ((SECONDS < deadline)) || h_fail "trial $trial: no detection within 30 s (vigil: '${v:-none}', prometheus: '${p:-none}')"
        [[ -n $v ]] || v=$(vigil_opened "$killed" "$LAST_ID")
        [[ -n $p ]] || p=$(prom_notified "$killed")
        [[ -n $v && -n $p ]] || sleep 0.05
    done
    read -r inc_id opened fp <<<"$v"
    read -r received starts <<<"$p"
    LAST_ID=$inc_id
    paged=""
    while [[ -z $paged ]]; do
        ((SECONDS < deadline)) || h_fail "trial $trial: incident $inc_id paged nobody within 30 s"
        paged=$(paged_at "$inc_id")
        [[ -n $paged ]] || sleep 0.05
    done
    PAGE_MS+=("$(awk -v a="$killed" -v b="$paged" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
    VIGIL_MS+=("$(awk -v a="$killed" -v b="$opened" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
    PROM_MS+=("$(awk -v a="$killed" -v b="$received" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
    PROM_ACTIVE_MS+=("$(awk -v a="$killed" -v b="$starts" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
    h_log "trial $trial: vigil ${VIGIL_MS[-1]} ms (incident $inc_id, $fp; paged at ${PAGE_MS[-1]} ms), prometheus ${PROM_MS[-1]} ms (alert active in prometheus at ${PROM_ACTIVE_MS[-1]} ms)"

    start_nginx
    h_wait "trial $trial: the agent reporting nginx healthy again" 30 healthy
    # The responder's resolve; an auto-resolve (verify conditions held) may land first: either way
    # the incident must end resolved before the next kill.
    state=$(h_sql "SELECT state FROM incidents WHERE id = $inc_id")
    if [[ $state != resolved ]]; then
        out=$(h_ctl resolve "$inc_id" --note "detect bench trial $trial: nginx restarted" 2>&1) ||
            [[ $(h_sql "SELECT state FROM incidents WHERE id = $inc_id") == resolved ]] ||
            h_fail "resolve $inc_id: $out"
    fi
done

# ---- figures --------------------------------------------------------------------------------------
dist() { # dist NAME MS... -> "NAME: n=N min=.. p50=.. p90=.. p99=.. max=.. mean=.." (nearest rank)
    local name=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v name="$name" '{ v[NR] = $1; s += $1 }
        function rank(q,  r) { r = int(q * NR); if (r < q * NR) r++; if (r < 1) r = 1; return v[r] }
        END { printf "%s: n=%d min=%d p50=%d p90=%d p99=%d max=%d mean=%.0f (ms)\n", name, NR, v[1],
              rank(0.5), rank(0.9), rank(0.99), v[NR], s / NR }'
}
pct() { printf '%s\n' "${@:2}" | sort -n | awk -v q="$1" '{ v[NR] = $1 }
    END { r = int(q * NR); if (r < q * NR) r++; if (r < 1) r = 1; print v[r] }'; }
echo "kill -> incident opened, $TRIALS trials, 1 s health check / scrape / evaluation:"
echo "  $(dist "vigil (incident row opened_at)" "${VIGIL_MS[@]}")"
echo "  $(dist "vigil (first page received by the on-call webhook)" "${PAGE_MS[@]}")"
echo "  $(dist "prometheus+alertmanager (webhook stored the firing alert)" "${PROM_MS[@]}")"
echo "  $(dist "  of which prometheus alone (alert active, startsAt)" "${PROM_ACTIVE_MS[@]}")"
echo "  vigil trials (ms):      ${VIGIL_MS[*]}"
echo "  prometheus trials (ms): ${PROM_MS[*]}"
vp50=$(pct 0.5 "${VIGIL_MS[@]}") vp99=$(pct 0.99 "${VIGIL_MS[@]}")
gp50=$(pct 0.5 "${PAGE_MS[@]}") gp99=$(pct 0.99 "${PAGE_MS[@]}")
pp50=$(pct 0.5 "${PROM_MS[@]}") pp99=$(pct 0.99 "${PROM_MS[@]}")
echo "targets: vigil p50 <= 300 ms, p99 <= 1000 ms (printed, not enforced)"
awk -v a="$vp50" -v b="$vp99" -v c="$pp50" -v d="$pp99" -v e="$gp50" -v f="$gp99" 'BEGIN {
    printf "detect: vigil_p50_ms=%d vigil_p99_ms=%d prom_p50_ms=%d prom_p99_ms=%d p50_ratio=%.2f p99_ratio=%.2f page_p50_ms=%d page_p99_ms=%d\n",
        a, b, c, d, (a > 0 ? c / a : 0), (b > 0 ? d / b : 0), e, f
}'
