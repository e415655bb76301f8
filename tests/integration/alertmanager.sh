#!/usr/bin/env bash
# The Alertmanager webhook end to end: a real Alertmanager (Debian's prometheus-alertmanager)
# notifies the coordinator; a firing alert becomes the signal alert.<alertname> (value 1, state
# from its severity) and its resolve sets it to 0 / ok. Refusals (no token, wrong token, bad
# JSON, wrong method) get their status and reason, are counted, and leave the coordinator up.
# A runbook symptom on alert.<alertname> opens its incident, as one on an agent signal does.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

AM_BIN=${AM_BIN:-/usr/bin/prometheus-alertmanager}
[[ -x $AM_BIN ]] || h_fail "$AM_BIN not found (Debian package prometheus-alertmanager)"

AM_PID=""
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the coordinator
    if [[ -n $AM_PID ]]; then
        kill -TERM "$AM_PID" 2>/dev/null
        wait "$AM_PID" 2>/dev/null
    fi
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$TOKEN" >"$H_DIR/alertmanager.token")
# A runbook whose symptom is an Alertmanager alert: alerts reach the rule engine like any
# stored agent signal.
mkdir -p "$H_DIR/runbooks"
cat >"$H_DIR/runbooks/disk-alert.yaml" <<'YAML'
id: disk-alert
title: Disk almost full (Alertmanager)
severity: SEV3
symptoms:
  - id: disk-full-alert
    signal: alert.DiskFull
    above: 0
    for: 0s
YAML
h_start_coordinator "alertmanager:
  token_file: \"$H_DIR/alertmanager.token\"
  max_body: 64KiB
runbooks:
  dir: \"$H_DIR/runbooks\""
WEBHOOK=http://127.0.0.1:$H_PORT_HTTP/api/v1/alerts

# ---- refusals, straight at the webhook ------------------------------------------------------
post() { # post EXPECTED_STATUS BODY [curl args...] -> prints the response body
    local want=$1 body=$2
    shift 2
    local code
    code=$(curl -sS -o "$H_DIR/reply" -w '%{http_code}' -XPOST "$@" --data-binary "$body" "$WEBHOOK") ||
        h_fail "curl to the webhook failed"
    [[ $code == "$want" ]] || h_fail "expected HTTP $want, got $code: $(cat "$H_DIR/reply")"
    cat "$H_DIR/reply"
}
post 401 '{"version":"4","alerts":[]}' >/dev/null
post 401 '{"version":"4","alerts":[]}' -H "Authorization: Bearer wrong-$TOKEN" >/dev/null
[[ $(h_metric 'vigil_alerts_refused_total{reason="unauthorized"}') == 2 ]] ||
    h_fail "two unauthorized requests should be counted"
reply=$(post 400 '{"version":"4","alerts":[' -H "Authorization: Bearer $TOKEN")
[[ $reply == "not JSON:"* ]] || h_fail "400 without the reason: $reply"
reply=$(post 400 '{"version":"3","alerts":[]}' -H "Authorization: Bearer $TOKEN")
[[ $reply == *'version "3"'* ]] || h_fail "version refusal without the reason: $reply"
[[ $(h_metric 'vigil_alerts_refused_total{reason="malformed"}') == 1 &&
    $(h_metric 'vigil_alerts_refused_total{reason="version"}') == 1 ]] ||
    h_fail "malformed and version refusals should be counted"
big=$(head -c 70000 /dev/zero | tr '\0' ' ')
post 413 "{\"version\":\"4\",\"alerts\":[]}$big" -H "Authorization: Bearer $TOKEN" >/dev/null
# Without a Content-Length the body is read up to the limit, then the connection is closed.
curl -sS -o /dev/null -XPOST -H "Authorization: Bearer $TOKEN" -H 'Transfer-Encoding: chunked' \
    --data-binary "{\"version\":\"4\",\"alerts\":[]}$big" "$WEBHOOK" 2>/dev/null &&
    h_fail "a chunked body over the limit should be cut off"
[[ $(h_metric 'vigil_alerts_refused_total{reason="too_large"}') == 2 ]] ||
    h_fail "both bodies over the limit should be counted"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$WEBHOOK")
[[ $code == 405 ]] || h_fail "GET on the webhook: expected 405, got $code"
h_healthz || h_fail "the coordinator should still be healthy after the refusals"
h_pass "refusals: 401 (counted), 400 with the reason, 413, 405; coordinator healthy"

# ---- a real Alertmanager ---------------------------------------------------------------------
AM_PORT=$(h_free_port)
AM=http://127.0.0.1:$AM_PORT
mkdir -p "$H_DIR/am"
cat >"$H_DIR/am/alertmanager.yml" <<YAML
route:
  receiver: vigil
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: vigil
    webhook_configs:
      - url: "$WEBHOOK"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: "$H_DIR/alertmanager.token"
YAML
"$AM_BIN" --config.file="$H_DIR/am/alertmanager.yml" --storage.path="$H_DIR/am" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
    >>"$H_DIR/am/alertmanager.log" 2>&1 &
AM_PID=$!
am_ready() {
    kill -0 "$AM_PID" 2>/dev/null || h_fail "alertmanager exited: $(tail -5 "$H_DIR/am/alertmanager.log")"
    curl -fsS -o /dev/null "$AM/-/ready" 2>/dev/null
}
h_wait "alertmanager ready" 30 am_ready

STARTS=$(date -u -d '-2 min' +%Y-%m-%dT%H:%M:%SZ)
am_post() { # am_post ENDS_AT
    curl -fsS -XPOST -H 'Content-Type: application/json' "$AM/api/v2/alerts" -d "[{
        \"labels\": {\"alertname\": \"DiskFull\", \"instance\": \"node-a\", \"severity\": \"warning\"},
        \"annotations\": {\"summary\": \"disk almost full\"},
        \"startsAt\": \"$STARTS\", \"endsAt\": \"$1\"}]" >/dev/null ||
        h_fail "posting the alert to Alertmanager failed"
}
alert_json() { h_ctl signals -o json --name 'alert.*'; }
alert_is() { # alert_is VALUE STATE
    alert_json | jq -e --argjson v "$1" --arg s "$2" '[.[] | select(.name == "alert.DiskFull")]
        | length == 1 and .[0].value == $v and .[0].state == $s and .[0].node == "node-a"
          and .[0].agent_id == "alertmanager" and .[0].labels.severity == "warning"
          and (.[0].labels.fingerprint | length) > 0' >/dev/null
}

am_post "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
h_wait "alert.DiskFull firing (value 1, warning) in vigilctl signals" 15 alert_is 1 warning
[[ $(h_metric 'vigil_alerts_received_total{status="firing"}') -ge 1 ]] ||
    h_fail "the firing alert should be counted"
h_ctl signals --node node-a --name 'alert.*' | grep 'alert.DiskFull' >/dev/null ||
    h_fail "vigilctl signals --node node-a should list the alert"
h_pass "firing alert became alert.DiskFull=1 state=warning node=node-a"
incident_open() {
    h_ctl incidents -o json | jq -e 'any(.[]; .runbook == "disk-alert" and (.scope | index("node-a")))' >/dev/null
}
h_wait "the disk-alert runbook's incident opening for node-a" 10 incident_open
h_pass "a runbook symptom on alert.DiskFull opened its incident"

am_post "$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)"
h_wait "alert.DiskFull resolved (value 0, ok)" 15 alert_is 0 ok
[[ $(h_metric 'vigil_alerts_received_total{status="resolved"}') -ge 1 ]] ||
    h_fail "the resolved alert should be counted"
h_pass "resolved alert set alert.DiskFull=0 state=ok"

# ---- a retried notification is stored once -------------------------------------------------
rows_before=$(h_sql "SELECT count(*) FROM signals WHERE agent_id = 'alertmanager'")
payload='{"version":"4","status":"firing","receiver":"vigil","alerts":[{"status":"firing",
  "labels":{"alertname":"Retried","node":"node-b"},"startsAt":"2026-01-02T03:04:05Z",
  "fingerprint":"abcdef0123456789"}]}'
post 200 "$payload" -H "Authorization: Bearer $TOKEN" >/dev/null
reply=$(post 200 "$payload" -H "Authorization: Bearer $TOKEN")
[[ $reply == *"(0 new)"* ]] || h_fail "a retried notification should be stored once: $reply"
rows_after=$(h_sql "SELECT count(*) FROM signals WHERE agent_id = 'alertmanager'")
((rows_after == rows_before + 1)) || h_fail "signal rows went $rows_before -> $rows_after, expected +1"
h_pass "retried notification stored once"

# ---- the database down: 503, so Alertmanager retries; the retry after it is back is stored ----
pgdata=$(readlink -f "$H_DIR/coord/pgdata")
sock=$pgdata/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
sock=$(readlink -f "$sock")
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# The coordinator starts its private cluster again as soon as it sees it gone, and a pg_ctl
# waiting for the stop would then see the new postmaster and wait in vain. Stop it under
# another name, so the coordinator's restarts fail (and back off) until it is given back.
mv "$pgdata" "$pgdata.held"
as_postgres "$bindir/pg_ctl" -D "$pgdata.held" -m fast -w stop >/dev/null || h_fail "cannot stop the database"
down='{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"WhileDown"},
  "startsAt":"2026-01-02T03:04:05Z","fingerprint":"0000aaaa0000bbbb"}]}'
post 503 "$down" -H "Authorization: Bearer $TOKEN" >/dev/null
[[ $(h_metric 'vigil_alerts_refused_total{reason="store_error"}') == 1 ]] ||
    h_fail "the store failure should be counted"
# Given back, the coordinator starts its private cluster again by itself (at its next backoff).
mv "$pgdata.held" "$pgdata"
pg_back() { "$bindir/pg_isready" -q -h "$sock"; }
h_wait "the coordinator restarted its database" 30 pg_back
post 200 "$down" -H "Authorization: Bearer $TOKEN" >/dev/null
while_down_stored() {
    alert_json 2>/dev/null |
        jq -e '[.[] | select(.name == "alert.WhileDown" and .value == 1)] | length == 1' >/dev/null
}
# vigilctl's first listing may fail while the main loop's own connection reconnects.
h_wait "alert.WhileDown listed once the database is back" 15 while_down_stored
h_pass "database down: 503 and counted; the retry afterwards is stored"

# The main loop notices the database is back at its next store check.
h_wait "the coordinator healthy again" 15 h_healthz
h_pass "alertmanager webhook"
