#!/usr/bin/env bash
# An incident's whole life with the shipped application-down runbook and a real nginx:
#   - nginx killed: the process and health-check symptoms open ONE incident (one fingerprint per
#     runbook and scope), whose scope names the failing node; `vigilctl tail` shows it live
#   - nginx back: the runbook's verify conditions hold for their hold, and the incident resolves
#     itself (actor vigil, "verified: ...")
#   - killed again inside the reopen window: the same incident reopens; flapping three times
#     more stays that one incident; mitigate, then resolve by hand; a viewer may read but not
#     mitigate; the incident survives a coordinator restart
#   - the post-incident report: a draft from the timeline, then stored, which closes it
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# The shipped runbooks with application-down's `for` (10s -> 2s) and verify holds (2m / 5m ->
# 3s) shortened so the test runs in well under a minute; levels, scopes and severities are the
# shipped ones.
RB=$H_DIR/runbooks
mkdir -p "$RB"
cp "$VIGIL_SRC"/runbooks/*.yaml "$RB"/
sed -i 's/^    for: 10s$/    for: 2s/; s/hold: 2m}/hold: 3s}/; s/^    hold: 5m$/    hold: 3s/' \
    "$RB/application-down.yaml"
[[ $(grep -c 'hold: 3s' "$RB/application-down.yaml") == 3 ]] ||
    h_fail "application-down.yaml was not shortened: the shipped runbook changed shape"

NGX=$H_DIR/nginx
NGINX_PORT=$(h_free_port)
NGINX_PID=""
TAIL_PID=""
h_nginx_conf "$NGX" off "    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /healthz { return 200 \"ok\\n\"; }
    }"
nginx_up() { curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/healthz"; }
# nginx in a process group of its own (setsid execs it directly: $! is the master and the
# group), so a crash can take the master and its worker at once: killed one after the other,
# the master would start a new worker that outlives it and keeps answering.
start_nginx() {
    setsid /usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" >>"$NGX/logs/stderr.log" 2>&1 &
    NGINX_PID=$!
    h_wait "nginx answering" 10 nginx_up
}
kill_nginx() {
    kill -KILL -- "-$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}
on_exit() {
    local status=$?
    set +e
    [[ -n $TAIL_PID ]] && kill "$TAIL_PID" 2>/dev/null
    [[ -n $NGINX_PID ]] && kill_nginx
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT
start_nginx

h_start_coordinator "runbooks:
  dir: \"$RB\""
h_start_agent web-1 "collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  http:
    interval: 1s
    timeout: 2s
    targets:
      - {name: app, url: \"http://127.0.0.1:$NGINX_PORT/healthz\"}
  processes:
    interval: 1s
    watch:
      - {name: nginx, pidfile: \"$NGX/nginx.pid\"}"

latest() { # latest NAME: the newest value of NAME from web-1
    h_ctl signals -o json --node web-1 --name "$1" | jq -r 'sort_by(.ts) | last | .value // empty'
}
is_latest() { [[ $(latest "$1") == "$2" ]]; }
h_wait "http.up = 1" 30 is_latest http.up 1
h_wait "proc.up = 1" 10 is_latest proc.up 1

# vigilctl tail follows from now on, as JSON lines.
# Started directly, not through h_ctl: $! must be vigilctl itself for the cleanup to stop it.
VIGIL_CONFIG="$H_DIR/vigilctl.yaml" "$VIGIL_BUILD/vigilctl" tail -o json >"$H_DIR/tail.jsonl" 2>"$H_DIR/tail.err" &
TAIL_PID=$!
tail_following() {
    kill -0 "$TAIL_PID" 2>/dev/null || h_fail "vigilctl tail exited: $(cat "$H_DIR/tail.err")"
    grep -q "following incident changes" "$H_DIR/tail.err"
}
h_wait "vigilctl tail following" 10 tail_following

# ---- a crash: one incident for both symptoms, scope names the node --------------------------
kill_nginx
open_app() { h_ctl incidents -o json | jq -c '[.[] | select(.runbook == "application-down")]'; }
both_symptoms() {
    local id
    id=$(open_app | jq -r '.[0].id // empty')
    [[ -n $id ]] && h_ctl incident show "$id" -o json | jq -e '
        [.timeline[] | select(.data.state == "critical") | .data.symptom] as $s
        | ($s | index("process-down")) != null and ($s | index("health-check-failing")) != null' \
        >/dev/null
}
h_wait "both application-down symptoms on one incident" 20 both_symptoms
inc=$(open_app)
[[ $(jq length <<<"$inc") == 1 ]] || h_fail "one crash must be one incident: $inc"
id=$(jq -r '.[0].id' <<<"$inc")
jq -e '.[0].severity == "SEV1" and .[0].fingerprint == "application-down/" and .[0].scope == ["web-1"]' \
    <<<"$inc" >/dev/null || h_fail "expected SEV1 (all of one node), scope [web-1]: $inc"
h_pass "nginx killed -> one application-down incident $id (SEV1, scope web-1) for both symptoms"

# ---- back up: verify holds for 3 s, the incident resolves itself ----------------------------
start_nginx
t0=$(date +%s.%N)
state_is() { [[ $(h_ctl incident show "$id" -o json | jq -r .state) == "$1" ]]; }
h_wait "incident $id resolved by its verify conditions" 30 state_is resolved
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
show=$(h_ctl incident show "$id" -o json)
jq -e '.timeline[-1] | .kind == "resolved" and .actor == "vigil" and (.text | startswith("verified: http.up{target=app}") or startswith("verified: http.up"))' \
    <<<"$show" >/dev/null || h_fail "the resolve must be vigil's, saying what was verified: $show"
h_log "$(jq -r '.timeline[-1].text' <<<"$show")"
# Not before the hold: the symptoms cleared, then 3 s of verify.
jq -e '(.timeline | map(select(.kind == "symptom" and .data.state == "ok")) | last | .at) as $ok
       | (.timeline[-1].at) > $ok' <<<"$show" >/dev/null || h_fail "resolved before the symptoms cleared: $show"
h_pass "nginx back -> incident $id resolved itself ${took}s later: verified"

# ---- tail saw it all, in order ----------------------------------------------------------------
tail_kinds() { jq -r --argjson id "$id" 'select(.incident.id == $id) | .kind' "$H_DIR/tail.jsonl" | paste -sd, -; }
tail_has_resolve() { [[ $(tail_kinds) == *resolved ]]; }
h_wait "vigilctl tail shows the resolve" 5 tail_has_resolve
kinds=$(tail_kinds)
[[ $kinds == opened,*resolved && $kinds == *symptom* ]] ||
    h_fail "tail should show opened ... symptom ... resolved for incident $id: $kinds"
h_pass "vigilctl tail followed incident $id live: $kinds"

# ---- again inside the reopen window: the same incident; mitigate, a viewer, resolve ---------
kill_nginx
h_wait "incident $id reopened" 20 state_is detected
h_ctl incident show "$id" -o json | jq -e 'any(.timeline[]; .kind == "reopened")' >/dev/null ||
    h_fail "the timeline must say reopened"
[[ $(h_ctl incidents -o json | jq length) == 1 ]] || h_fail "a reopen is not a new incident"

# Flapping: up and down three times; every change joins the open incident, none opens another.
# Each step waits for the rule engine to have seen it (its event on the timeline): a flap
# shorter than one evaluation (250 ms) is, rightly, no event at all.
process_events() {
    h_ctl incident show "$id" -o json |
        jq '[.timeline[] | select(.kind == "symptom" and .data.symptom == "process-down")] | length'
}
events_above() { (($(process_events) > $1)); }
for i in 1 2 3; do
    n=$(process_events)
    start_nginx
    h_wait "process-down cleared on incident $id (flap $i)" 10 events_above "$n"
    n=$(process_events)
    kill_nginx
    h_wait "process-down again on incident $id (flap $i)" 10 events_above "$n"
done
[[ $(h_ctl incidents --status all -o json | jq '[.[] | select(.runbook == "application-down")] | length') == 1 ]] ||
    h_fail "a flapping application must stay one incident: $(h_ctl incidents --status all -o json)"
state_is detected || h_fail "incident $id should still be open while nginx flaps"
h_pass "nginx flapping three times: still one incident, $(process_events) process-down events on it"

"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/viewer.key" >/dev/null
h_sql "INSERT INTO operators (id, name, public_key, role)
       VALUES ('op-viewer', 'vera', '$(h_key_public "$H_DIR/viewer.key")', 'viewer')" >/dev/null
# Operators are loaded at start-up: a restart, which the open incident and tail both survive.
h_stop_coordinator
h_start_coordinator "runbooks:
  dir: \"$RB\""
h_write_ctl_config "$H_DIR/viewer.yaml" "$H_DIR/viewer.key"
state_is detected || h_fail "incident $id should still be open after a restart"
out=$(VIGIL_CONFIG="$H_DIR/viewer.yaml" "$VIGIL_BUILD/vigilctl" mitigate "$id" --note x 2>&1) &&
    h_fail "a viewer must not mitigate: $out"
[[ $out == *"needs the responder role"* ]] || h_fail "the refusal should name the role: $out"
out=$(h_ctl mitigate "$id" 2>&1) && h_fail "mitigate without a note must fail: $out"
[[ $out == *"--note"* ]] || h_fail "the usage error should ask for --note: $out"
h_ctl mitigate "$id" --note "traffic moved to the standby" >/dev/null || h_fail "mitigate $id"
state_is mitigated || h_fail "incident $id should be mitigated"
out=$(h_ctl ack "$id" 2>&1) && h_fail "ack after mitigate must be refused: $out"
out=$(h_ctl report "$id" --file /dev/null 2>&1) && h_fail "an empty report must be refused: $out"
echo "# too early" >"$H_DIR/early.md"
out=$(h_ctl report "$id" --file "$H_DIR/early.md" 2>&1) && h_fail "a report of an open incident must be refused: $out"
[[ $out == *"still open"* ]] || h_fail "the refusal should say it is still open: $out"
start_nginx
h_wait "proc.up = 1 again" 15 is_latest proc.up 1
h_wait "http.up = 1 again" 15 is_latest http.up 1
h_ctl resolve "$id" --note "nginx restarted; was OOM-killed" >/dev/null || h_fail "resolve $id"
h_pass "killed again -> incident $id reopened; mitigated and resolved by hand; viewer refused"

# ---- the report: a draft from the timeline, then stored, which closes the incident -----------
h_ctl report "$id" >"$H_DIR/draft.md" 2>"$H_DIR/draft.err" || h_fail "report $id: $(cat "$H_DIR/draft.err")"
grep -q "has no report yet; this is a draft" "$H_DIR/draft.err" || h_fail "the draft should say so on stderr"
for want in "# Incident Report: $id" "## Summary" "## Timeline" "## Root Cause" "## Lessons Learned" \
    "reopened (vigil)" "mitigated (admin): traffic moved to the standby" \
    "resolved (admin): nginx restarted; was OOM-killed" "verified: "; do
    grep -qF -- "$want" "$H_DIR/draft.md" || h_fail "the draft lacks \"$want\": $(cat "$H_DIR/draft.md")"
done
sed -i 's/^\[Detailed explanation of what caused the incident\]$/nginx was OOM-killed twice./' "$H_DIR/draft.md"
h_ctl report "$id" --file "$H_DIR/draft.md" >/dev/null || h_fail "report $id --file"
state_is closed || h_fail "the first report closes the incident"
h_ctl report "$id" -o json | jq -e '.draft == false and (.report | contains("nginx was OOM-killed twice."))' \
    >/dev/null || h_fail "the stored report should come back: $(h_ctl report "$id" -o json)"
h_sql "UPDATE incident_reports SET body = 'x'" >/dev/null 2>&1 && h_fail "reports must be append-only"
# An operator's change and its audit row are one transaction: the same xmin (transaction id).
for pair in mitigated:incident.mitigate resolved:incident.resolve closed:incident.report; do
    n=$(h_sql "select count(*) from incident_events e join audit_log a on a.xmin = e.xmin
               where e.incident_id = $id and e.kind = '${pair%%:*}' and a.action = '${pair#*:}'
               and a.actor = 'operator:admin' and a.subject = 'incident $id'")
    [[ $n == 1 ]] || h_fail "${pair#*:} and its timeline event must commit together (got $n): $(
        h_sql "select xmin, action, subject, detail from audit_log")"
done
[[ $(h_sql "select detail from audit_log where action = 'incident.report' and subject = 'incident $id'") == closed ]] ||
    h_fail "the report that closed incident $id must be audited as closed"
h_pass "the report: a draft from the timeline, stored, incident $id closed"

tail_closed() { jq -s -e --argjson id "$id" 'any(.[]; .incident.id == $id and .kind == "closed")' "$H_DIR/tail.jsonl" >/dev/null; }
h_wait "vigilctl tail, across the restart, shows the close" 5 tail_closed
kinds=$(tail_kinds)
# In order; between the milestones, symptom events as they came (none is also fine: whether a
# symptom clears between the mitigation and the resolve depends on timing).
[[ $kinds =~ ^opened,(.*,)?resolved,reopened,(.*,)?mitigated,(.*,)?resolved,closed$ ]] ||
    h_fail "tail should show the whole life of incident $id in order: $kinds"
h_pass "vigilctl tail kept following across the coordinator's restart: $kinds"
