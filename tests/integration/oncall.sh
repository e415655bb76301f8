#!/usr/bin/env bash
# On-call schedules through vigilctl:
#   1. `vigil-coordinator -n` refuses a policy level that reaches nobody (exit 78, file:line:col)
#   2. `vigilctl oncall -o json` shows who the weekly rotation puts on call now, since and until
#      when, and who is next (a UTC rotation computed here; a Europe/Berlin one hands over at
#      Monday 09:00 local)
#   3. `vigilctl oncall override` changes it, is refused for unknown names and a bad interval,
#      and is audited
#   4. the override survives a coordinator restart
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# ---- 1. a level that reaches nobody ------------------------------------------------------------
h_write_coordinator_config "paging:
  contacts:
    - {name: oncall, slack: \"http://127.0.0.1:9/oncall\"}
    - {name: cto, email: cto@example.com}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"contact:oncall\"]}
        - {delay: 1h, targets: [\"contact:cto\"]}"
h_capture out rc "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/coordinator.yaml"
[[ $rc == 78 ]] || h_fail "-n with a level that reaches nobody: exit $rc, want 78 ($out)"
line=$(grep -n '"contact:cto"' "$H_DIR/coordinator.yaml" | cut -d: -f1)
col=$(awk -v n="$line" 'NR == n { print index($0, "\"contact:cto\"") }' "$H_DIR/coordinator.yaml")
want="coordinator.yaml:$line:$col: \"paging.policies[0].levels[1].targets\": level 2 of policy \"default\" reaches nobody: contact \"cto\" has only e-mail, and paging.smtp.url is not set"
[[ $out == *"$want"* ]] || h_fail "-n message: got \"$out\", want \"...$want\""
h_pass "-n refuses a level that reaches nobody, at $line:$col"

# ---- 2. who is on call -------------------------------------------------------------------------
PAGING="paging:
  contacts:
    - {name: alice, slack: \"http://127.0.0.1:9/alice\"}
    - {name: bob, slack: \"http://127.0.0.1:9/bob\"}
    - {name: carol, webhook: \"http://127.0.0.1:9/carol\"}
    - {name: dave, slack: \"http://127.0.0.1:9/dave\"}
  schedules:
    - {name: primary, timezone: UTC, handover: \"Mon 09:00\", start: 2024-01-01,
       users: [alice, bob, carol]}
    - {name: emea, timezone: Europe/Berlin, handover: \"Mon 09:00\", start: 2024-01-01,
       users: [dave]}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: [\"schedule:primary\"]}
        - {delay: 15m, targets: [\"schedule:emea\"]}"
h_start_coordinator "$PAGING"

USERS=(alice bob carol)
H0=$(date -u -d "2024-01-01T09:00:00Z" +%s)
WEEK=604800
rfc3339() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# The rotation at Unix time $1: "user since until next".
rotation_at() {
    local k=$((($1 - H0) / WEEK))
    echo "${USERS[k % 3]} $((H0 + k * WEEK)) $((H0 + (k + 1) * WEEK)) ${USERS[(k + 1) % 3]}"
}
field() { jq -r --arg s "$2" ".[] | select(.schedule == \$s) | $3" <<<"$1"; }

json=$(h_ctl oncall -o json)
read -r user since until next <<<"$(rotation_at "$(date +%s)")"
[[ $(jq length <<<"$json") == 2 ]] || h_fail "want two schedules: $json"
[[ $(field "$json" primary .user) == "$user" ]] || h_fail "primary: want $user: $json"
[[ $(field "$json" primary .since) == "$(rfc3339 "$since")" ]] || h_fail "primary since: $json"
[[ $(field "$json" primary .until) == "$(rfc3339 "$until")" ]] || h_fail "primary until: $json"
[[ $(field "$json" primary .next_user) == "$next" ]] || h_fail "primary next: $json"
[[ $(field "$json" primary .next_since) == "$(rfc3339 "$until")" ]] || h_fail "next_since: $json"
[[ $(field "$json" primary .override) == false ]] || h_fail "primary override: $json"
[[ $(field "$json" emea .user) == dave && $(field "$json" emea .timezone) == Europe/Berlin ]] ||
    h_fail "emea: $json"
emea_since=$(field "$json" emea .since)
emea_until=$(field "$json" emea .until)
[[ $(TZ=Europe/Berlin date -d "$emea_since" '+%a %H:%M') == "Mon 09:00" ]] ||
    h_fail "emea since $emea_since is not Monday 09:00 in Berlin"
hours=$((($(date -d "$emea_until" +%s) - $(date -d "$emea_since" +%s)) / 3600))
[[ $hours == 167 || $hours == 168 || $hours == 169 ]] || h_fail "emea week of $hours hours"
h_ctl oncall | grep -E "^primary +$user +" >/dev/null || h_fail "table: $(h_ctl oncall)"
h_pass "oncall: primary is $user until $(rfc3339 "$until"), then $next; emea hands over Monday 09:00 Berlin"

# ---- 3. an override ----------------------------------------------------------------------------
h_capture out rc h_ctl oncall override --schedule nosuch --user dave --from now --to +2h
[[ $rc == 1 && $out == *'no schedule named "nosuch"'* ]] || h_fail "unknown schedule: $rc $out"
h_capture out rc h_ctl oncall override --schedule primary --user erin --from now --to +2h
[[ $rc == 1 && $out == *'no contact named "erin"'* ]] || h_fail "unknown user: $rc $out"
h_capture out rc h_ctl oncall override --schedule primary --user dave --from +2h --to +1h
[[ $rc == 2 && $out == *'--to must be after --from'* ]] || h_fail "to before from: $rc $out"
h_capture out rc h_ctl oncall override --schedule primary --user dave --from yesterday --to +1h
[[ $rc == 2 && $out == *'--from must be'* ]] || h_fail "bad time: $rc $out"
h_capture out rc h_ctl oncall --schedule primary
[[ $rc == 2 ]] || h_fail "oncall list --schedule: $rc $out"

ovr=$(h_ctl oncall override --schedule primary --user dave --from now --to +2h -o json)
id=$(jq -r .id <<<"$ovr")
to=$(jq -r .to <<<"$ovr")
[[ $id =~ ^[0-9]+$ && $(jq -r .oncall.user <<<"$ovr") == dave ]] || h_fail "override: $ovr"
[[ $(jq -r .oncall.until <<<"$ovr") == "$to" ]] || h_fail "override until: $ovr"
# Seconds precision: the store keeps milliseconds, RFC 3339 output shows seconds.
read -r after _ _ _ <<<"$(rotation_at "$(date -d "$to" +%s)")"
check_override() {
    local json
    json=$(h_ctl oncall -o json)
    [[ $(field "$json" primary .user) == dave ]] || h_fail "$1: primary is not dave: $json"
    [[ $(field "$json" primary .override) == true ]] || h_fail "$1: not an override: $json"
    [[ $(field "$json" primary .until) == "$to" ]] || h_fail "$1: until: $json"
    [[ $(field "$json" primary .next_user) == "$after" ]] || h_fail "$1: next: $json"
    [[ $(field "$json" emea .override) == false ]] || h_fail "$1: emea changed: $json"
}
check_override "after the override"
h_ctl oncall | grep -E "^primary +dave \(override\)" >/dev/null || h_fail "table: $(h_ctl oncall)"
[[ $(h_sql "select count(*) from audit_log where action = 'oncall_override' and subject = 'primary'") == 1 ]] ||
    h_fail "the override is not audited"
h_pass "override $id: dave on call for primary until $to, then $after"

# ---- 4. a restart ------------------------------------------------------------------------------
h_stop_coordinator
h_start_coordinator "$PAGING"
check_override "after a restart"
[[ $(h_sql "select user_name from oncall_overrides where id = $id") == dave ]] ||
    h_fail "override row"
h_pass "the override survives a restart"
