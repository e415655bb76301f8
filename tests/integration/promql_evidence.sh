#!/usr/bin/env bash
# The promql evidence kind (Vigil issue 15): a runbook's investigate entry {kind: promql, query}
# is captured by the coordinator from a real Prometheus (Debian's prometheus, scraping itself
# every second on loopback) when the incident opens.
#   - `vigilctl incident show` lists it (node "coordinator", stored, SHA-256); `vigilctl evidence
#     get` returns bytes whose sha256sum is that SHA-256: a JSON header line (the query, the
#     evaluation time, the URL asked) and Prometheus's answer as it sent it; the vault verifies;
#     the report lists it.
#   - `vigilctl collect promql --arg query=EXPR` captures one on request.
#   - Prometheus stopped: an incident's promql collection fails, and its timeline says why
#     (connection refused, with the URL); `vigilctl collect promql` exits 3 with the reason.
#   - No prometheus.url: the collection fails saying Prometheus is not configured.
# Incidents are opened by an Alertmanager-style alert posted to the coordinator's webhook, so
# they open whether Prometheus is up or not.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

PROM_BIN=${PROM_BIN:-/usr/bin/prometheus}
[[ -x $PROM_BIN ]] || h_fail "$PROM_BIN not found (Debian package prometheus)"

PROM_PID=""
stop_pid() { # stop_pid PID
    [[ -n $1 ]] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the coordinator
    stop_pid "$PROM_PID"
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- Prometheus, scraping itself every second (as in promql.sh) ------------------------------
PROM_PORT=$(h_free_port)
PROM=http://127.0.0.1:$PROM_PORT
mkdir -p "$H_DIR/prom/data"
cat >"$H_DIR/prom/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
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
h_wait "prometheus scraped itself" 20 prom_says 'up{job="prometheus"}' '.data.result[0].value[1] == "1"'

# ---- runbooks whose symptom is an alert, and which investigate with a query ------------------
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$TOKEN" >"$H_DIR/alertmanager.token")
QUERY='up{job="prometheus"}'
mkdir -p "$H_DIR/runbooks"
for n in 1 2 3; do
    cat >"$H_DIR/runbooks/check-$n.yaml" <<YAML
id: check-$n
title: Check $n
severity: SEV3
symptoms:
  - id: alert
    signal: alert.Check$n
    above: 0
    for: 0s
investigate:
  - {kind: promql, query: '$QUERY'}
YAML
done
coordinator_config() { # coordinator_config [prometheus yaml]
    printf '%s\n' "alertmanager:
  token_file: \"$H_DIR/alertmanager.token\"
runbooks:
  dir: \"$H_DIR/runbooks\"
$1"
}
h_start_coordinator "$(coordinator_config "prometheus:
  url: \"$PROM\"
  timeout: 2s")"
WEBHOOK=http://127.0.0.1:$H_PORT_HTTP/api/v1/alerts

fire() { # fire ALERTNAME: the alert fires on node-a, through the webhook
    curl -fsS -o /dev/null -XPOST -H "Authorization: Bearer $TOKEN" --data-binary \
        "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"vigil\",\"alerts\":[{\"status\":\"firing\",
          \"labels\":{\"alertname\":\"$1\",\"node\":\"node-a\"},\"startsAt\":\"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)\",
          \"fingerprint\":\"$(printf '%s' "$1" | sha256sum | cut -c1-16)\"}]}" "$WEBHOOK" ||
        h_fail "posting alert $1 to the webhook failed"
}
incident_of() { h_ctl incidents -o json | jq -r --arg rb "$1" '[.[] | select(.runbook == $rb)] | last | .id // empty'; }
settled() { # settled ID: its one investigation row is no longer pending
    h_ctl incident show "$1" -o json |
        jq -e '.investigation | length == 1 and all(.[]; .status != "pending")' >/dev/null
}

# ---- an incident opens: the query, the time and the answer are in the vault ------------------
fire Check1
has1() { [[ -n $(incident_of check-1) ]]; }
h_wait "the check-1 incident" 15 has1
id=$(incident_of check-1)
h_wait "incident $id's promql evidence settled" 15 settled "$id"
doc=$(h_ctl incident show "$id" -o json)
row=$(jq -c '.investigation[0]' <<<"$doc")
jq -e '.kind == "promql" and .node == "coordinator" and .status == "stored"
       and (.sha256 | test("^[0-9a-f]{64}$")) and .args.query == "up{job=\"prometheus\"}"' \
    <<<"$row" >/dev/null || h_fail "incident show: the promql evidence is not stored: $row"
ev=$(jq -r '.id' <<<"$row")
sha=$(jq -r '.sha256' <<<"$row")
text=$(h_ctl incident show "$id")
grep -q "promql.*coordinator\|coordinator.*promql" <<<"$text" ||
    h_fail "incident show (text) does not list the promql evidence: $text"

h_ctl evidence get "$ev" --out "$H_DIR/promql.bin" >/dev/null || h_fail "evidence get $ev"
[[ $(sha256sum "$H_DIR/promql.bin" | cut -d' ' -f1) == "$sha" ]] ||
    h_fail "the fetched bytes do not hash to the vault's SHA-256 $sha"
head -n 1 "$H_DIR/promql.bin" >"$H_DIR/promql.head"
tail -n +2 "$H_DIR/promql.bin" >"$H_DIR/promql.answer"
jq -e --arg q "$QUERY" --arg prom "$PROM/api/v1/query?query=" '
    .format == "vigil-promql/1" and .query == $q and .http_status == 200
    and (.url | startswith($prom)) and (.url | test("&time=[0-9]+\\.[0-9]{3}"))
    and (.time | test("^20[0-9-]+T[0-9:.]+Z$")) and .truncated == false' \
    "$H_DIR/promql.head" >/dev/null || h_fail "the artifact's header is wrong: $(cat "$H_DIR/promql.head")"
[[ $(jq -r .answer_bytes "$H_DIR/promql.head") == $(stat -c %s "$H_DIR/promql.answer") ]] ||
    h_fail "answer_bytes does not match the answer's length"
jq -e '.status == "success" and .data.resultType == "vector"
       and .data.result[0].metric.job == "prometheus" and .data.result[0].value[1] == "1"' \
    "$H_DIR/promql.answer" >/dev/null || h_fail "the answer is not Prometheus's: $(cat "$H_DIR/promql.answer")"
# The evaluation time asked of Prometheus is the one the header records.
t_head=$(jq -r '.time_ms / 1000' "$H_DIR/promql.head")
t_answer=$(jq -r '.data.result[0].value[0]' "$H_DIR/promql.answer")
awk -v a="$t_head" -v b="$t_answer" 'BEGIN { d = a - b; exit !(d < 0.002 && d > -0.002) }' ||
    h_fail "the answer is at $t_answer, the header says $t_head"
h_ctl evidence verify >/dev/null || h_fail "the vault does not verify with the promql artifact"
[[ $(h_sql "SELECT agent_id || ' ' || node || ' ' || kind FROM evidence WHERE id = $ev") == "coordinator coordinator promql" ]] ||
    h_fail "the vault row is not the coordinator's: $(h_sql "SELECT agent_id, node, kind FROM evidence WHERE id = $ev")"
timeline=$(jq -r '.timeline[] | "\(.kind) \(.actor) \(.text)"' <<<"$doc")
grep -q "^note vigil investigating: promql from coordinator (collection [0-9]*)" <<<"$timeline" ||
    h_fail "the timeline does not say the query is being captured: $timeline"
report=$(h_ctl report "$id")
grep -q "^- promql from coordinator: evidence $ev, [0-9]* bytes, SHA-256 $sha$" <<<"$report" ||
    h_fail "the report does not list the promql evidence: $report"
# The rest of the document's template, from what is stored.
for want in "^Detected by the runbook's symptoms alert on 1 node(s): node-a\.$" \
    "^- [0-9-]* [0-9:]* UTC - Incident detected (check-1, SEV3)$" \
    "^- [0-9-]* [0-9:]* UTC - Investigation started (Vigil began collecting evidence: promql from coordinator (collection [0-9]*))$" \
    "^- \[TIME\] - Root cause identified$" "^- \[TIME\] - Incident resolved$" \
    "^- Nodes affected: 1 (node-a)$" "^- Services affected: Check 1 (runbook check-1); symptoms alert$" \
    "^- Duration: still open ([0-9]*s since " "^- alert (critical, first at [0-9-]* [0-9:]* UTC): " \
    "^- Evidence: 1 artifact(s) in the vault, 0 not collected$" "^- \[ \] Action item 1$"; do
    grep -q -- "$want" <<<"$report" || h_fail "the report lacks /$want/: $report"
done
h_pass "incident $id opened -> its query, time and Prometheus's answer are evidence $ev; sha256sum matches; vault verifies"

# ---- on request -------------------------------------------------------------------------------
out=$(h_ctl collect promql --arg 'query=count(up)' -o json) || h_fail "collect promql failed: $out"
jq -e 'length == 1 and .[0].status == "stored" and .[0].kind == "promql" and .[0].node == "coordinator"' \
    <<<"$out" >/dev/null || h_fail "collect promql: $out"
if h_ctl collect promql --node node-a --arg query=up >"$H_DIR/out" 2>&1; then
    h_fail "collect promql --node should be refused"
fi
grep -q "takes neither --node nor --all" "$H_DIR/out" || h_fail "collect promql --node: $(cat "$H_DIR/out")"
h_pass "vigilctl collect promql --arg query=... stores one artifact from the coordinator"

# ---- Prometheus down: the collection fails with its reason ------------------------------------
stop_pid "$PROM_PID"
PROM_PID=""
fire Check2
has2() { [[ -n $(incident_of check-2) ]]; }
h_wait "the check-2 incident" 15 has2
id2=$(incident_of check-2)
h_wait "incident $id2's promql collection settled" 15 settled "$id2"
doc=$(h_ctl incident show "$id2" -o json)
jq -e '.investigation[0] | .kind == "promql" and .status == "failed"' <<<"$doc" >/dev/null ||
    h_fail "with Prometheus down the collection should fail: $(jq -c .investigation <<<"$doc")"
timeline=$(jq -r '.timeline[] | "\(.kind) \(.actor) \(.text)"' <<<"$doc")
grep -qF "note vigil investigation: promql from coordinator failed: Prometheus gave no answer (refused): connection refused ($PROM/api/v1/query)" <<<"$timeline" ||
    h_fail "the timeline does not say why the query was not captured: $timeline"
set +e
h_ctl collect promql --arg query=up >"$H_DIR/out" 2>"$H_DIR/err"
status=$?
set -e
[[ $status == 3 ]] || h_fail "collect promql with Prometheus down: exit $status, expected 3"
grep -q "coordinator: promql: Prometheus gave no answer (refused): connection refused" "$H_DIR/err" ||
    h_fail "collect promql with Prometheus down does not say why: $(cat "$H_DIR/err")"
h_ctl evidence verify >/dev/null || h_fail "the vault does not verify after the failures"
h_pass "Prometheus down -> incident $id2's promql collection failed, the timeline says connection refused"

# ---- no Prometheus configured -----------------------------------------------------------------
h_stop_coordinator
h_start_coordinator "$(coordinator_config "")"
fire Check3
has3() { [[ -n $(incident_of check-3) ]]; }
h_wait "the check-3 incident" 15 has3
id3=$(incident_of check-3)
h_wait "incident $id3's promql collection settled" 15 settled "$id3"
timeline=$(h_ctl incident show "$id3" -o json | jq -r '.timeline[] | "\(.kind) \(.actor) \(.text)"')
grep -qF "note vigil investigation: promql from coordinator failed: Prometheus is not configured (prometheus.url in the coordinator's configuration)" <<<"$timeline" ||
    h_fail "without prometheus.url the timeline should say so: $timeline"
h_pass "no prometheus.url -> the promql collection fails saying Prometheus is not configured"
