#!/usr/bin/env bash
# SMS, tickets and business hours end to end (docs/notifications.md), with an HTTP sink
# (tests/tools/http_sink.py) standing for Twilio and GitHub, answering as they do:
#   1. a SEV4 pages alice by SMS (Twilio's request shape: path, basic auth, form fields) and files
#      one GitHub issue (path, bearer token, JSON); the issue's link is on the incident
#      (`vigilctl incident show -o json` .ticket, the report draft)
#   2. SIGKILL and restart: the ticket is not filed again
#   3. a SEV3 outside its business hours pages nobody; its timeline says until when
source "$(dirname "$0")/../lib/harness.sh"
h_setup

PY=${VIGIL_PYTHON:-/usr/bin/python3}
API_PID=""
on_exit() {
    local status=$?
    set +e
    [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

# ---- the APIs: one sink answering 201 with what Twilio and GitHub would ------------------------
API_LOG=$H_DIR/api.jsonl
echo '{"sid": "SM0123456789abcdef", "number": 7, "html_url": "https://github.com/acme/ops/issues/7"}' \
    >"$H_DIR/api.answer"
echo 201 >"$H_DIR/api.mode"
"$PY" "$VIGIL_SRC/tests/tools/http_sink.py" --log "$API_LOG" --port-file "$H_DIR/api.port" \
    --mode-file "$H_DIR/api.mode" --answer-file "$H_DIR/api.answer" >"$H_DIR/api.out" 2>&1 &
API_PID=$!
h_wait "the API sink listening" 10 test -s "$H_DIR/api.port"
API=http://127.0.0.1:$(cat "$H_DIR/api.port")

printf 'twilio-token\n' >"$H_DIR/twilio.token"
printf 'ghp_integration\n' >"$H_DIR/github.token"
chmod 600 "$H_DIR/twilio.token" "$H_DIR/github.token"

# Business hours closed today and tomorrow (UTC), open every other day: a SEV3 now is held.
today=$(date -u +%a) tomorrow=$(date -u -d tomorrow +%a)
open_days=$(for d in Mon Tue Wed Thu Fri Sat Sun; do
    [[ $d == "$today" || $d == "$tomorrow" ]] || printf '%s, ' "$d"
done | sed 's/, $//')

PAGING="paging:
  contacts:
    - {name: alice, phone: \"+4915112345678\"}
  business_hours:
    - {name: office, timezone: UTC, days: [$open_days], start: \"00:00\", end: \"24:00\"}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"contact:alice\"]}
    - name: team
      levels:
        - {delay: 0s, targets: [\"contact:alice\"], hours: office}
  routing:
    SEV3: {policy: team}
  status_update_interval: 1h
  notify: {attempts: 2, backoff: 200ms, max_backoff: 1s, timeout: 2s}
  sms: {url: \"$API\", account_sid: AC0123456789abcdef, auth_token_file: \"$H_DIR/twilio.token\",
        from: \"+15005550006\"}
  tickets: {kind: github, api_url: \"$API\", owner: acme, repo: ops, labels: [incident],
            token_file: \"$H_DIR/github.token\"}"
h_start_coordinator "$PAGING"

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
# open NAME SEVERITY: an incident of its own; prints its id
open_incident() {
    local id outcome
    read -r id outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "$1/" "$1" "$2" critical \
        "Disk filling ($1)" db-1) || h_fail "incident-inject $1"
    [[ $outcome == opened ]] || h_fail "incident for $1 not opened: $outcome"
    echo "$id"
}
requests() { jq -c --arg p "$1" 'select(.path == $p)' "$API_LOG"; }
count() { requests "$1" | wc -l; }
has() { (($(count "$1") >= ${2:-1})); }

SMS_PATH=/2010-04-01/Accounts/AC0123456789abcdef/Messages.json
ISSUES_PATH=/repos/acme/ops/issues

# ---- 1. SEV4: an SMS and one ticket, its link on the incident -----------------------------------
i4=$(open_incident disk-4 4)
h_wait "alice's SMS" 10 has "$SMS_PATH"
h_wait "the GitHub issue" 10 has "$ISSUES_PATH"
sms=$(requests "$SMS_PATH" | head -1)
[[ $(jq -r .method <<<"$sms") == POST ]] || h_fail "SMS not a POST: $sms"
[[ $(jq -r '.headers.Authorization' <<<"$sms") == "Basic $(printf 'AC0123456789abcdef:twilio-token' | base64 -w0)" ]] ||
    h_fail "SMS basic auth: $sms"
form=$(jq -r .body <<<"$sms")
[[ $form == "To=%2B4915112345678&From=%2B15005550006&Body=%5BSEV4%5D%20Disk%20filling"* ]] ||
    h_fail "SMS form: $form"
issue=$(requests "$ISSUES_PATH" | head -1)
[[ $(jq -r '.headers.Authorization' <<<"$issue") == "Bearer ghp_integration" ]] || h_fail "issue auth: $issue"
jq -e '.body | fromjson | (.title | startswith("[SEV4] Disk filling (disk-4)")) and .labels == ["incident"]
    and (.body | contains("vigilctl ack"))' <<<"$issue" >/dev/null || h_fail "issue body: $issue"
has_link() { [[ $(h_ctl incident show "$i4" -o json | jq -r .ticket) == "https://github.com/acme/ops/issues/7" ]]; }
h_wait "the ticket's link on incident $i4" 10 has_link
h_ctl incident show "$i4" | grep "ticket        https://github.com/acme/ops/issues/7" >/dev/null ||
    h_fail "incident show does not print the ticket"
h_ctl report "$i4" | grep "ticket filed: https://github.com/acme/ops/issues/7" >/dev/null ||
    h_fail "the report draft lacks the ticket"
h_pass "1. SEV4: SMS to alice (Twilio shape), one GitHub issue, its link on the incident and in the report"

# ---- 2. a restart does not file it again --------------------------------------------------------
h_kill_coordinator
h_start_coordinator "$PAGING"
sleep 3
(($(count "$ISSUES_PATH") == 1)) || h_fail "the ticket was filed again: $(count "$ISSUES_PATH")"
(($(h_sql "select count(*) from incident_tickets where incident_id = $i4") == 1)) ||
    h_fail "one stored ticket"
h_pass "2. after SIGKILL and restart the ticket is not filed again"

# ---- 3. SEV3 outside business hours: held, on the timeline --------------------------------------
i3=$(open_incident disk-3 3)
held() { h_ctl incident show "$i3" -o json |
    jq -e '[.timeline[] | select(.text | test("^paging level 1 of policy team \\(contact:alice\\) held until [0-9-]+ 00:00 UTC \\(business hours office\\)$"))] | length == 1' >/dev/null; }
h_wait "the hold on incident $i3's timeline" 10 held
sleep 2
(($(h_sql "select count(*) from notifications where incident_id = $i3 and kind = 'page'") == 0)) ||
    h_fail "a SEV3 outside business hours was paged"
(($(h_sql "select count(*) from notifications where incident_id = $i3 and channel = 'ticket'") == 0)) ||
    h_fail "a SEV3 filed a ticket (tickets.severities defaults to SEV4)"
h_pass "3. SEV3 outside business hours: nobody paged, 'held until ... (business hours office)' on its timeline"
