#!/usr/bin/env bash
# Escalation end to end with real receivers on loopback: an HTTP sink (tests/tools/http_sink.py)
# stands for Slack, generic webhooks and PagerDuty, and a real SMTP server (aiosmtpd, Debian's
# python3-aiosmtpd) receives the mail. The document's timeline, made short by configuration
# (levels at 0 s, 3 s, 6 s, 9 s instead of 0, 15, 30, 60 min):
#   1. primary (webhook, signed) -> secondary (Slack) -> manager (e-mail) -> CTO (PagerDuty), in
#      order, with the right delays; the SEV1 audience (management) told at once
#   2. an acknowledgement stops it; PagerDuty gets trigger, acknowledge, resolve with one
#      dedup_key; the resolution reaches everyone paged
#   3. SIGKILL mid-escalation: after the restart the late level is paged at once, nothing twice
#   4. a receiver that keeps failing: retried, recorded as failed, the next level paged early
#   5. status updates on schedule while an incident is open
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# Debian's Python (python3-aiosmtpd is installed for it), not whichever python3 is first on PATH.
PY=${VIGIL_PYTHON:-/usr/bin/python3}
SINK_PID="" SMTP_PID=""
on_exit() {
    local status=$?
    set +e
    [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null
    [[ -n $SMTP_PID ]] && kill "$SMTP_PID" 2>/dev/null
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

# ---- receivers ----------------------------------------------------------------------------------
h_start_sink

SMTP_PORT=$(h_free_port)
mkdir -p "$H_DIR/mail"
"$PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$H_DIR/mail/box" \
    >"$H_DIR/smtp.out" 2>&1 &
SMTP_PID=$!
smtp_up() { (: <"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; }
h_wait "the SMTP server listening" 10 smtp_up

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$H_DIR/webhook.secret"
chmod 600 "$H_DIR/webhook.secret"

# ---- the team ----------------------------------------------------------------------------------
PAGING="paging:
  contacts:
    - {name: alice, webhook: \"$SINK/alice\"}
    - {name: bob, slack: \"$SINK/bob\"}
    - {name: manager, email: \"manager@example.net\"}
    - {name: cto, pagerduty: \"cto-routing-key\", slack: \"$SINK/cto\"}
    - {name: stakeholders, slack: \"$SINK/stakeholders\"}
    - {name: management, slack: \"$SINK/management\"}
  schedules:
    - {name: primary, timezone: UTC, handover: \"Mon 09:00\", start: \"2026-01-05\", users: [alice]}
    - {name: secondary, timezone: UTC, handover: \"Mon 09:00\", start: \"2026-01-05\", users: [bob]}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"schedule:primary\"]}
        - {delay: 3s, targets: [\"schedule:secondary\"]}
        - {delay: 6s, targets: [\"contact:manager\"]}
        - {delay: 9s, targets: [\"contact:cto\", \"contact:stakeholders\"]}
  routing:
    SEV1: {policy: default, also: [\"contact:management\"]}
  status_update_interval: 1h
  notify: {attempts: 3, backoff: 200ms, max_backoff: 1s, timeout: 1s}
  smtp: {url: \"smtp://127.0.0.1:$SMTP_PORT\", from: \"vigil@example.net\"}
  pagerduty_url: \"$SINK/pagerduty\"
  webhook_secret_file: \"$H_DIR/webhook.secret\""
h_start_coordinator "$PAGING"

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
# open NAME: a SEV1 incident of its own; prints its id
open_incident() {
    local id outcome
    read -r id outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" "$1/" "$1" 1 critical \
        "Checkout down ($1)" web-1) || h_fail "incident-inject $1"
    [[ $outcome == opened ]] || h_fail "incident for $1 not opened: $outcome"
    echo "$id"
}
# received PATH INCIDENT: requests the sink got on PATH about the incident, as JSON lines
received() {
    jq -c --arg p "/$1" --argjson id "$2" 'select(.path == $p)
        | (.body | fromjson? // {}) as $b
        | select(($b.incident_id // $b.payload.custom_details.incident_id // -1) == $id
                 or ($b.text // "" | test("incident \($id)\\)")) or ($b.dedup_key // "") == "vigil-incident-\($id)")' \
        "$SINK_LOG"
}
count() { received "$1" "$2" | wc -l; }
has() { (($(count "$1" "$2") >= ${3:-1})); }
first_time() { received "$1" "$2" | sed -n 1p | jq -r .time; }
mail_count() { grep -l "incident $1)" "$H_DIR/mail/box/new/"* 2>/dev/null | wc -l; }
mail_has() { (($(mail_count "$1") >= 1)); }

# ---- 1. the timeline, in order, with its delays ---------------------------------------------------
t0=$(date +%s.%N)
i1=$(open_incident checkout-1)
h_wait "level 1: alice's webhook" 5 has alice "$i1"
h_wait "level 2: bob on Slack" 8 has bob "$i1"
h_wait "level 3: the manager's e-mail" 11 mail_has "$i1"
h_wait "level 4: the CTO on PagerDuty" 14 has pagerduty "$i1"
has stakeholders "$i1" || h_fail "level 4 includes the stakeholders"
has management "$i1" || h_fail "SEV1 tells management (the audience) at once"
a=$(first_time alice "$i1") b=$(first_time bob "$i1") p=$(first_time pagerduty "$i1")
awk -v t0="$t0" -v a="$a" -v b="$b" -v p="$p" 'BEGIN {
    da = a - t0; db = b - t0; dp = p - t0
    printf "delays: alice %.1fs bob %.1fs cto %.1fs\n", da, db, dp > "/dev/stderr"
    exit !(da < 2 && db >= 2.5 && db < 5 && dp >= 8.5 && dp < 12)
}' || h_fail "the levels came at the wrong times (alice $a, bob $b, cto $p, start $t0)"

# The webhook is signed over its exact body with the shared secret.
received alice "$i1" | sed -n 1p | jq -r '.body_b64, .headers["X-Vigil-Signature"]' >"$H_DIR/sig"
body_sig=$(sed -n 1p "$H_DIR/sig" | base64 -d | openssl dgst -sha256 -hmac "$(cat "$H_DIR/webhook.secret")" -r | cut -d' ' -f1)
[[ "sha256=$body_sig" == "$(sed -n 2p "$H_DIR/sig")" ]] || h_fail "the webhook signature does not verify"
# What a person needs at 3 a.m.: severity, title, scope, start, who, the ack command.
msg=$(received bob "$i1" | sed -n 1p | jq -r '.body | fromjson | .text')
for want in "[SEV1]" "Checkout down (checkout-1)" "Scope:      web-1" "Started:" "vigilctl ack $i1"; do
    [[ $msg == *"$want"* ]] || h_fail "the page lacks \"$want\": $msg"
done
grep -q "^Subject: \[SEV1\] Checkout down (checkout-1) (incident $i1) needs you, level 3" "$H_DIR/mail/box/new/"* ||
    h_fail "the manager's mail lacks its subject"
jq -e '.body | fromjson | .event_action == "trigger" and .routing_key == "cto-routing-key"' \
    < <(received pagerduty "$i1" | head -1) >/dev/null || h_fail "PagerDuty should get a trigger"
h_ctl notifications "$i1" -o json | jq -e '[.[] | select(.kind == "page")] | length == 6 and all(.status == "sent")' \
    >/dev/null || h_fail "six pages, all sent: $(h_ctl notifications "$i1" -o json)"
h_pass "1. primary -> secondary -> manager -> CTO in order (alice, then bob ~3 s, CTO ~9 s); management told; webhook signed"

# ---- 2. acknowledgement stops it; PagerDuty trigger -> acknowledge -> resolve ------------------------
h_ctl ack "$i1" >/dev/null || h_fail "ack $i1"
i2=$(open_incident checkout-2)
h_wait "incident $i2 level 1" 5 has alice "$i2"
h_ctl ack "$i2" >/dev/null || h_fail "ack $i2"
sleep 4.5 # past level 2's 3 s
has bob "$i2" && h_fail "an acknowledged incident must not reach level 2"
h_pass "2. an acknowledgement stops the escalation (no level 2 for incident $i2)"
# Asking for help by hand: the next level now, with who asked on the timeline.
h_ctl escalate "$i2" >/dev/null || h_fail "escalate $i2"
h_wait "level 2 paged by hand" 3 has bob "$i2"
h_ctl incident show "$i2" -o json | jq -e 'any(.timeline[]; .kind == "escalated" and .actor == "admin" and (.text | test("level 2")))' \
    >/dev/null || h_fail "the timeline must say admin escalated to level 2"
out=$(h_ctl escalate 999999 2>&1) && h_fail "escalating an unknown incident must fail: $out"
h_pass "2. vigilctl escalate pages the next level at once, recorded as admin's"

h_wait "PagerDuty acknowledge for $i1" 5 has pagerduty "$i1" 2
h_ctl resolve "$i1" --note "rolled back the release" >/dev/null || h_fail "resolve $i1"
h_wait "PagerDuty resolve for $i1" 5 has pagerduty "$i1" 3
received pagerduty "$i1" | jq -sr 'map(.body | fromjson) | map(.event_action) | join(",")' >"$H_DIR/pd"
[[ $(cat "$H_DIR/pd") == "trigger,acknowledge,resolve" ]] || h_fail "PagerDuty order: $(cat "$H_DIR/pd")"
received pagerduty "$i1" | jq -se 'map(.body | fromjson | .dedup_key) | unique | length == 1' >/dev/null ||
    h_fail "one dedup_key for the whole incident"
h_wait "the resolution reaches bob" 5 has bob "$i1" 3 # page, acknowledged, resolved
h_pass "2. PagerDuty: trigger, acknowledge, resolve with one dedup_key; the resolution told to those paged"
h_ctl resolve "$i2" --note "done" >/dev/null

# ---- 3. SIGKILL mid-escalation: nothing missed, nothing twice -------------------------------------
i3=$(open_incident checkout-3)
h_wait "incident $i3 level 1" 5 has alice "$i3"
# Killed once level 1's delivery is recorded: a page received but killed before it was recorded
# is sent again after the restart (at least once), which is not what this case checks.
level1_recorded() {
    [[ $(h_sql "select count(*) from notifications where incident_id = $i3 and kind = 'page'
                  and level = 0 and status = 'sent'") -ge 1 ]]
}
h_wait "incident $i3 level 1 recorded as sent" 5 level1_recorded
h_kill_coordinator
sleep 4 # level 2 (3 s) falls due while the coordinator is down
t_restart=$(date +%s.%N)
h_start_coordinator "$PAGING"
h_wait "level 2 paged after the restart" 6 has bob "$i3"
late=$(awk -v a="$(first_time bob "$i3")" -v t="$t_restart" 'BEGIN { printf "%.1f", a - t }')
h_wait "level 3 after the restart" 8 mail_has "$i3"
(($(count alice "$i3") == 1)) || h_fail "level 1 paged again after the restart: $(count alice "$i3")"
(($(count bob "$i3") == 1)) || h_fail "level 2 paged twice: $(count bob "$i3")"
h_pass "3. SIGKILL mid-escalation: level 2 paged ${late}s after the restart, levels 1 and 2 once each"
h_ctl resolve "$i3" --note "done" >/dev/null

# ---- 4. a receiver that keeps failing: retried, failed, next level early ------------------------------
echo 500 >"$H_DIR/sink.mode"
i4=$(open_incident checkout-4)
failed() { h_ctl notifications "$i4" -o json | jq -e 'any(.[]; .kind == "page" and .target == "alice" and .status == "failed" and .attempts == 3 and .code == 500)' >/dev/null; }
h_wait "alice's page failed after 3 attempts" 10 failed
echo 200 >"$H_DIR/sink.mode"
h_wait "level 2 paged early" 3 has bob "$i4"
early=$(awk -v a="$(first_time bob "$i4")" -v t="$(first_time alice "$i4")" 'BEGIN { printf "%.1f", a - t }')
h_ctl incident show "$i4" -o json | jq -e 'any(.timeline[]; .kind == "notify_failed" and (.text | test("page to alice by webhook failed after 3 attempts")))' \
    >/dev/null || h_fail "the failure must be on the timeline"
(($(count alice "$i4") == 3)) || h_fail "alice's page: 3 attempts expected, got $(count alice "$i4")"
h_pass "4. a failing receiver: 3 attempts, failed on the timeline, level 2 paged ${early}s after the first attempt"
h_ctl resolve "$i4" --note "done" >/dev/null

# ---- 5. status updates on schedule ------------------------------------------------------------------
h_stop_coordinator
PAGING=${PAGING/status_update_interval: 1h/status_update_interval: 2s}
h_start_coordinator "$PAGING"
i5=$(open_incident checkout-5)
h_wait "incident $i5 level 1" 5 has alice "$i5"
h_ctl ack "$i5" >/dev/null || h_fail "ack $i5"
updates() { h_ctl notifications "$i5" -o json | jq '[.[] | select(.kind == "update" and .target == "alice")] | length'; }
updates_at_least() { (($(updates) >= $1)); }
h_wait "two status updates" 8 updates_at_least 2
sleep 2.5
n=$(updates)
((n >= 3 && n <= 5)) || h_fail "status updates every 2 s: $n after ~7 s"
h_pass "5. status updates every 2 s while open ($n so far), to those paged"

# ---- 6. a missed response deadline is escalated and recorded --------------------------------------
# The SEV1 deadline is 15 minutes; the stored deadline is moved into the past instead of waiting.
i6=$(open_incident checkout-6)
h_wait "incident $i6 level 1" 5 has alice "$i6"
h_sql "UPDATE escalations SET deadline_at = now() - interval '1 second' WHERE incident_id = $i6" >/dev/null
missed() { h_ctl incident show "$i6" -o json | jq -e 'any(.timeline[]; .kind == "deadline_missed")' >/dev/null; }
h_wait "the missed deadline on the timeline" 5 missed
h_wait "level 2 paged at once for the missed deadline" 3 has bob "$i6"
h_pass "6. a missed response deadline: recorded, and the next level paged at once"
