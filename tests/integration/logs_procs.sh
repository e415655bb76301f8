#!/usr/bin/env bash
# Log tails and watched processes end to end: an agent follows an application log (a glob with
# an error pattern), an nginx-style access log and an auth log, and watches a worker by
# pidfile and a sleeper by comm. Lines written with the shell reach `vigilctl signals` as
# counts, an error rate with its threshold state, failed logins per source; rotation and an
# agent restart neither lose nor re-count lines; a killed worker is reported down at once and
# its replacement counted as a restart.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

L=$H_DIR/logs
mkdir -p "$L"
for i in $(seq 1 20); do echo "history ERROR $i" >>"$L/app-1.log"; done # before the agent: not news
: >"$L/access.log"
: >"$L/auth.log"

# The watched processes, stopped with the test whatever happens.
children=()
stop_children() {
    local status=$?
    if ((${#children[@]})); then kill "${children[@]}" 2>/dev/null || true; fi
    (exit "$status")
    h_cleanup
}
trap stop_children EXIT
sleep 1000 &
worker=$!
children+=("$worker")
echo "$worker" >"$H_DIR/worker.pid"
cp /bin/sleep "$H_DIR/vigil-test-slp" # comm is the executable's name
"$H_DIR/vigil-test-slp" 1000 &
sleeper=$!
children+=("$sleeper")

collectors=$(cat <<YAML
collectors:
  logs:
    interval: 1s
    window: 60s
    files:
      - {name: app, path: "$L/app-*.log", patterns: [{name: error, regex: "ERROR|FATAL"}]}
      - {name: web, path: "$L/access.log", format: access}
      - {name: auth, path: "$L/auth.log", format: auth}
  processes:
    interval: 1s
    watch:
      - {name: worker, pidfile: "$H_DIR/worker.pid"}
      - {name: sleeper, comm: "vigil-test-slp"}
YAML
)

h_start_coordinator
h_start_agent node-a "$collectors"
out=$("$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/agents/node-a/agent.yaml" 2>&1) ||
    h_fail "the agent refuses the logs/processes configuration: $out"

sig() { h_ctl signals -o json --node node-a; }
# val NAME LABELS-JSON: the latest value of one series, empty when there is none.
val() { sig | jq -r --arg n "$1" --argjson l "$2" '[.[] | select(.name == $n and .labels == $l)][0].value // empty'; }
state() { sig | jq -r --arg n "$1" --argjson l "$2" '[.[] | select(.name == $n and .labels == $l)][0].state // empty'; }
# is NAME LABELS OP NUMBER: the latest value compares so (==, <=, >=, <, >).
is() {
    local v
    v=$(val "$1" "$2")
    [[ -n $v ]] && awk -v a="$v" -v b="$4" -v op="$3" 'BEGIN {
        if (op == "==") exit !(a == b); if (op == "<=") exit !(a <= b); if (op == ">=") exit !(a >= b)
        if (op == "<") exit !(a < b); exit !(a > b) }'
}
APP='{"file":"app"}'
APP_ERR='{"file":"app","pattern":"error"}'
WEB='{"file":"web"}'
AUTH='{"file":"auth"}'
WORKER='{"name":"worker"}'
SLEEPER='{"name":"sleeper"}'

# ---- the first run: history is not counted; both processes are up ----
h_wait "log.lines{file=app} from the agent" 40 is log.lines "$APP" == 0
is log.match_count "$APP_ERR" == 0 || h_fail "history was counted: $(val log.match_count "$APP_ERR") errors"
h_wait "proc.up{name=worker} = 1" 10 is proc.up "$WORKER" == 1
is proc.pid "$WORKER" == "$worker" || h_fail "proc.pid{worker} is $(val proc.pid "$WORKER"), not $worker"
h_wait "proc.up{name=sleeper} = 1 (found by comm)" 10 is proc.up "$SLEEPER" == 1
is proc.pid "$SLEEPER" == "$sleeper" || h_fail "proc.pid{sleeper} is $(val proc.pid "$SLEEPER"), not $sleeper"
h_pass "history skipped at start-up; processes found by pidfile and by comm"

# ---- patterns ----
printf '%s\n' "GET / 200" "ERROR db timeout" "ok" "FATAL out of memory" "ERROR again" >>"$L/app-1.log"
h_wait "3 error lines counted" 10 is log.match_count "$APP_ERR" == 3
is log.lines "$APP" == 5 || h_fail "log.lines{app} is $(val log.lines "$APP"), expected 5"
is log.match_rate "$APP_ERR" == 3 || h_fail "log.match_rate is $(val log.match_rate "$APP_ERR") per minute, expected 3"
h_pass "error pattern matches counted"

# ---- access log: 10 % 500s is critical ----
for i in $(seq 1 20); do
    status=200
    ((i % 10 == 0)) && status=500
    echo "203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] \"GET /api/$i HTTP/1.1\" $status 512 \"-\" \"curl/8.0\"" >>"$L/access.log"
done
h_wait "20 requests counted" 10 is log.http.requests "$WEB" == 20
is log.error_rate_pct "$WEB" == 10 || h_fail "log.error_rate_pct is $(val log.error_rate_pct "$WEB"), expected 10"
[[ $(state log.error_rate_pct "$WEB") == critical ]] ||
    h_fail "a 10 % error rate is $(state log.error_rate_pct "$WEB"), not critical"
is log.http.status '{"file":"web","class":"5xx"}' == 2 || h_fail "5xx count"
is log.http.status '{"file":"web","class":"2xx"}' == 18 || h_fail "2xx count"
h_pass "access log: requests, status classes, error rate 10 % critical"

# ---- rotation: the old file is finished, the new one read from its start, a new file too ----
echo "ERROR last line of the old file" >>"$L/app-1.log"
mv "$L/app-1.log" "$L/app-1.log.1"
printf '%s\n' "ERROR first of the new file" "ERROR second" >"$L/app-1.log"
echo "ERROR in a second application log" >"$L/app-2.log"
h_wait "rotated and new files counted" 15 is log.match_count "$APP_ERR" == 7
is log.rotations "$APP" == 1 || h_fail "log.rotations{app} is $(val log.rotations "$APP"), expected 1"
h_wait "the old file given up after its grace period" 15 is log.files "$APP" == 2
sleep 2
is log.match_count "$APP_ERR" == 7 || h_fail "counts moved after rotation: $(val log.match_count "$APP_ERR")"
h_pass "rotation keeps counting: no line lost, none counted twice"

# ---- restart: offsets are kept, nothing is read again ----
h_stop_agent node-a
printf '%s\n' "ERROR while the agent was down" "ERROR also down" >>"$L/app-1.log"
h_start_agent node-a "$collectors"
# A fresh window: only the two new lines. Re-reading would show 9 or more.
h_wait "the two lines written while the agent was down" 40 is log.match_count "$APP_ERR" == 2
sleep 3
is log.match_count "$APP_ERR" == 2 || h_fail "after the restart the count jumped to $(val log.match_count "$APP_ERR")"
is log.lines "$APP" == 2 || h_fail "after the restart log.lines{app} is $(val log.lines "$APP"), expected 2"
h_pass "an agent restart resumes from the saved offsets"

# ---- failed logins per source ----
{
    for i in 1 2 3 4 5; do
        echo "Oct 10 13:55:0$i web sshd[10$i]: Failed password for root from 203.0.113.7 port 4000$i ssh2"
    done
    echo "Oct 10 13:55:06 web sshd[200]: Invalid user admin from 198.51.100.4 port 5000"
    echo "Oct 10 13:55:07 web sshd[201]: Invalid user oracle from 198.51.100.4 port 5001"
    echo "Oct 10 13:55:08 web sshd[300]: Accepted publickey for deploy from 10.0.0.5 port 2 ssh2"
} >>"$L/auth.log"
h_wait "failed logins from 203.0.113.7" 10 is log.failed_logins '{"file":"auth","source":"203.0.113.7"}' == 5
is log.failed_logins '{"file":"auth","source":"198.51.100.4"}' == 2 || h_fail "failed logins from 198.51.100.4"
is log.failed_logins "$AUTH" == 7 || h_fail "log.failed_logins{auth} is $(val log.failed_logins "$AUTH"), expected 7"
[[ -z $(val log.failed_logins '{"file":"auth","source":"10.0.0.5"}') ]] || h_fail "an accepted login was counted"
h_pass "failed logins counted per source"

# ---- the worker dies: proc.up = 0 within 2 s; a new worker is a restart ----
h_wait "proc.up{worker} = 1 after the agent restart" 10 is proc.up "$WORKER" == 1
killed=$(date +%s.%N)
kill "$worker"
wait "$worker" 2>/dev/null || true
h_wait "proc.up{name=worker} = 0" 10 is proc.up "$WORKER" == 0
elapsed=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
awk -v e="$elapsed" 'BEGIN { exit !(e <= 2.0) }' || h_fail "proc.up = 0 arrived ${elapsed}s after the kill"
[[ $(state proc.up "$WORKER") == critical ]] || h_fail "a dead worker is $(state proc.up "$WORKER"), not critical"
grep -q "processes: name=worker pid=$worker exited" "$H_DIR/agents/node-a/agent.log" ||
    h_fail "the exit was not noticed through the pidfd"
h_log "proc.up = 0 seen ${elapsed}s after the kill"

sleep 1000 &
worker2=$!
children+=("$worker2")
echo "$worker2" >"$H_DIR/worker.pid"
h_wait "the new worker is up" 10 is proc.up "$WORKER" == 1
is proc.restarts "$WORKER" == 1 || h_fail "proc.restarts{worker} is $(val proc.restarts "$WORKER"), expected 1"
is proc.pid "$WORKER" == "$worker2" || h_fail "proc.pid{worker} is not the new worker"
is proc.restarts "$SLEEPER" == 0 || h_fail "the sleeper counted a restart"
h_pass "a killed worker is down within ${elapsed}s; its replacement counts as a restart"
