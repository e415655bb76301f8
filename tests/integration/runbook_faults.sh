#!/usr/bin/env bash
# The shipped runbooks end to end: each fault the incident-response document describes is
# injected on loopback and the incident it opens is read back with `vigilctl`, with its
# severity and timeline.
#   1. application down: nginx killed on one of two nodes -> application-down, SEV2 (partial);
#      on the other too -> the same incident raised to SEV1 (complete outage)
#   2. high error rate: 10 % 5xx in the access log -> high-error-rate, SEV3
#   3. database issues: a second PostgreSQL cluster killed -> database-issues, SEV1; then the
#      application's 5xx symptoms attach to it (timeline "attached"), no page of their own
#   4. performance degradation: a slow endpoint on one of two nodes -> SEV3 (SEV2 only when slow
#      on every node)
#   5. security incident: 60 failed logins from one source -> security-incident, SEV2
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# The runbooks under test are a copy of the shipped ones with shorter `for` durations, so the
# test runs in about a minute; levels, scopes and severities are untouched:
#   application-down health-check-failing 10s -> 2s, database-issues database-down 15s -> 3s,
#   performance-degradation response-time 1m -> 2s.
RB=$H_DIR/runbooks
mkdir -p "$RB"
cp "$VIGIL_SRC"/runbooks/*.yaml "$RB"/
sed -i 's/^    for: 10s$/    for: 2s/' "$RB/application-down.yaml"
sed -i 's/^    for: 15s$/    for: 3s/' "$RB/database-issues.yaml"
sed -i 's/^    for: 1m$/    for: 2s/' "$RB/performance-degradation.yaml"
for f in application-down:2s database-issues:3s performance-degradation:2s; do
    grep -q "^    for: ${f#*:}$" "$RB/${f%:*}.yaml" ||
        h_fail "${f%:*}.yaml was not shortened: the shipped runbook changed shape"
done

# The servers this test starts are stopped before the harness's own cleanup, which keeps the
# exit status it is given.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_DATA=$H_DIR/pg2/data
PG_RUNNING=0
declare -A NGINX_PID=() NGINX_PORT=()
stop_nginx() { # stop_nginx NAME
    local pid=${NGINX_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    NGINX_PID[$1]=""
}
stop_pg() {
    ((PG_RUNNING)) || return 0
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    PG_RUNNING=0
}
on_exit() {
    local status=$? name
    set +e # a failing run must still reach h_cleanup, which stops the agents and coordinator
    for name in "${!NGINX_PID[@]}"; do stop_nginx "$name"; done
    stop_pg
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- nginx: the application on two nodes (web1, web2: /healthz) and a slow endpoint ----------
configure_nginx() { # configure_nginx NAME
    local ngx=$H_DIR/nginx-$1
    NGINX_PORT[$1]=$(h_free_port)
    mkdir -p "$ngx/www"
    # 28 KiB at 4 KiB/s: about 7 s, past the 5 s critical response time, inside a 10 s timeout.
    head -c 28672 /dev/zero | tr '\0' 'x' >"$ngx/www/slow"
    h_nginx_conf "$ngx" off "    server {
        listen 127.0.0.1:${NGINX_PORT[$1]};
        location = /healthz { return 200 \"ok\\n\"; }
        location = /slow { root $ngx/www; limit_rate 4k; }
    }"
}

nginx_up() { # nginx_up NAME
    local ngx=$H_DIR/nginx-$1
    kill -0 "${NGINX_PID[$1]}" 2>/dev/null ||
        h_fail "nginx $1 exited: $(tail -5 "$ngx/logs/error.log" "$ngx/logs/stderr.log")"
    curl -fsS -o /dev/null "http://127.0.0.1:${NGINX_PORT[$1]}/healthz"
}
start_nginx() { # start_nginx NAME
    local ngx=$H_DIR/nginx-$1
    /usr/sbin/nginx -p "$ngx" -c "$ngx/nginx.conf" >>"$ngx/logs/stderr.log" 2>&1 &
    NGINX_PID[$1]=$!
    h_wait "nginx $1 answering" 10 nginx_up "$1"
}
for name in web1 web2; do
    configure_nginx "$name"
    start_nginx "$name"
done

# ---- a second PostgreSQL cluster: the application's database (the coordinator's own store
# must keep running) ---------------------------------------------------------------------------
PG_PORT=$(h_free_port)
mkdir -p "$H_DIR/pg2"
chown postgres "$H_DIR/pg2"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-locale -E UTF8 \
    >"$H_DIR/pg2/initdb.log" 2>&1 || h_fail "initdb: $(tail -5 "$H_DIR/pg2/initdb.log")"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$H_DIR/pg2/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories='$H_DIR/pg2' -c fsync=off" \
    start >/dev/null 2>&1 || h_fail "pg_ctl start: $(tail -5 "$H_DIR/pg2/postgres.log")"
PG_RUNNING=1

# ---- logs -----------------------------------------------------------------------------------
L=$H_DIR/logs
mkdir -p "$L"
: >"$L/access.log"
: >"$L/auth.log"

h_start_coordinator "runbooks:
  dir: \"$RB\""

# Netstat off: nginx coming back would be a new listener, a security symptom of its own. Host off:
# the test machine's own CPU, memory and disk are not under test.
agent_yaml=$(cat <<YAML
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  http:
    interval: 1s
    timeout: 4s
    targets:
      - {name: app, url: "http://127.0.0.1:${NGINX_PORT[web1]}/healthz"}
  postgres:
    interval: 1s
    timeout: 2s
    targets:
      - {name: db, conninfo: "host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres"}
  logs:
    interval: 1s
    window: 60s
    files:
      - {name: app, path: "$L/access.log", format: access}
      - {name: auth, path: "$L/auth.log", format: auth}
YAML
)
out=$("$VIGIL_BUILD/vigil-agent" -n -c <(printf 'coordinator: {public_key: "%s"}\n%s\n' "$H_COORD_PUB" "$agent_yaml") 2>&1) ||
    h_fail "vigil-agent does not accept the configuration: $out"
h_start_agent node-a "$agent_yaml"
# The application's second node: its own nginx, health check only.
h_start_agent node-b "collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  http:
    interval: 1s
    timeout: 4s
    targets:
      - {name: app, url: \"http://127.0.0.1:${NGINX_PORT[web2]}/healthz\"}"

# latest NAME TARGET [NODE]: the latest value of NAME{target=TARGET} from NODE (node-a).
latest() {
    h_ctl signals -o json --node "${3:-node-a}" --name "$1" |
        jq -r --arg t "$2" '[.[] | select(.labels.target == $t)] | sort_by(.ts) | last | .value // empty'
}
is_latest() { [[ $(latest "$1" "$2" "${4:-node-a}") == "$3" ]]; }
h_wait "http.up{target=app} = 1 on node-a" 40 is_latest http.up app 1
h_wait "http.up{target=app} = 1 on node-b" 20 is_latest http.up app 1 node-b
h_wait "pg.up{target=db} = 1" 20 is_latest pg.up db 1
logs_followed() {
    h_ctl signals -o json --node node-a --name log.lines |
        jq -e 'any(.[]; .labels.file == "app") and any(.[]; .labels.file == "auth")' >/dev/null
}
h_wait "the access and auth logs followed" 20 logs_followed
[[ $(h_ctl incidents -o json | jq length) == 0 ]] ||
    h_fail "incidents open before any fault: $(h_ctl incidents -o json)"
h_pass "healthy: application, database and logs reported, no incident"

# open_of RUNBOOK: the open incidents of a runbook (JSON array).
open_of() { h_ctl incidents -o json | jq -c --arg r "$1" '[.[] | select(.runbook == $r)]'; }
one_open() { [[ $(open_of "$1" | jq length) == 1 ]]; }
# expect_incident RUNBOOK SEVERITY: exactly one open incident of RUNBOOK, detected, with that
# severity, a response deadline, and a timeline that starts with "opened". Prints its id.
expect_incident() {
    local inc id show
    inc=$(open_of "$1")
    [[ $(jq length <<<"$inc") == 1 ]] || h_fail "$1: expected one open incident: $inc"
    jq -e --arg s "$2" '.[0] | .severity == $s and .state == "detected" and .response_due != null and .opened_at != null' \
        <<<"$inc" >/dev/null || h_fail "$1: expected a detected $2 incident: $inc"
    id=$(jq -r '.[0].id' <<<"$inc")
    show=$(h_ctl incident show "$id" -o json) || h_fail "incident show $id"
    jq -e '.timeline[0].kind == "opened"' <<<"$show" >/dev/null ||
        h_fail "$1: incident $id's timeline does not start with opened: $show"
    grep -q "incident opened id=$id runbook=$1 severity=$2" "$H_DIR/coordinator.log" ||
        h_fail "$1: the opening of incident $id is not logged"
    echo "$id"
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
access_lines() { # access_lines COUNT STATUS: COUNT combined-format lines with STATUS
    local i
    for ((i = 0; i < $1; i++)); do
        echo "203.0.113.9 - - [29/Nov/2026:19:00:00 +0000] \"GET /api/$i HTTP/1.1\" $2 512 \"-\" \"curl/8.0\""
    done >>"$L/access.log"
}

# ---- 1. application down ---------------------------------------------------------------------
# Down on one of the two nodes: a partial outage, SEV2.
t0=$(date +%s.%N)
stop_nginx web1
h_wait "an application-down incident" 15 one_open application-down
took=$(since "$t0")
app_id=$(expect_incident application-down SEV2)
show=$(h_ctl incident show "$app_id" -o json)
jq -e '.timeline[0] | tostring | test("http.up") and test("1 of 2 nodes")' <<<"$show" >/dev/null ||
    h_fail "incident $app_id was not opened by the health check on 1 of 2 nodes: $(jq -c '.timeline[0]' <<<"$show")"
due_partial=$(jq -r '.response_due' <<<"$show")
h_pass "1. nginx killed on node-a -> application-down incident $app_id, SEV2 (partial), ${took}s later"

# Down on every node: a complete outage, the same incident raised to SEV1.
t0=$(date +%s.%N)
stop_nginx web2
raised() { [[ $(open_of application-down | jq -r '.[0].severity') == SEV1 ]]; }
h_wait "application-down raised to SEV1" 15 raised
took=$(since "$t0")
[[ $(open_of application-down | jq length) == 1 ]] ||
    h_fail "the complete outage opened a second incident: $(open_of application-down)"
show=$(h_ctl incident show "$app_id" -o json)
jq -e '.severity == "SEV1" and any(.timeline[]; .kind == "severity" and (tostring | test("SEV2 -> SEV1")))' \
    <<<"$show" >/dev/null || h_fail "incident $app_id has no SEV2 -> SEV1 event: $show"
# SEV1's 15 minutes are due before SEV2's hour (ISO 8601 UTC orders as text).
[[ $(jq -r '.response_due' <<<"$show") < $due_partial ]] ||
    h_fail "the response deadline did not tighten: $due_partial, then $(jq -r '.response_due' <<<"$show")"
h_pass "1. nginx killed on node-b too -> incident $app_id raised to SEV1 (complete outage) ${took}s later"

start_nginx web1
start_nginx web2
h_wait "http.up{target=app} back to 1 on node-a" 10 is_latest http.up app 1
h_wait "http.up{target=app} back to 1 on node-b" 10 is_latest http.up app 1 node-b

# ---- 2. high error rate ----------------------------------------------------------------------
t0=$(date +%s.%N)
access_lines 18 200
access_lines 2 503
h_wait "a high-error-rate incident" 15 one_open high-error-rate
took=$(since "$t0")
err_id=$(expect_incident high-error-rate SEV3)
[[ $(open_of application-down | jq length) == 1 ]] ||
    h_fail "10 % 5xx should not open a second application-down incident: $(open_of application-down)"
h_pass "2. 10 % 5xx in the access log -> high-error-rate incident $err_id, SEV3, ${took}s later"

# Both resolved by hand: what follows must not join them.
h_ctl resolve "$app_id" --note "nginx restarted" >/dev/null || h_fail "resolve $app_id"
h_ctl resolve "$err_id" --note "errors stopped" >/dev/null || h_fail "resolve $err_id"
[[ $(h_ctl incidents -o json | jq length) == 0 ]] || h_fail "incidents still open: $(h_ctl incidents -o json)"

# ---- 3. database issues, and the application's symptoms attached to it ------------------------
t0=$(date +%s.%N)
stop_pg
h_wait "pg.up{target=db} = 0" 10 is_latest pg.up db 0
h_wait "a database-issues incident" 15 one_open database-issues
took=$(since "$t0")
db_id=$(expect_incident database-issues SEV1)
h_pass "3. second PostgreSQL killed -> database-issues incident $db_id, SEV1, ${took}s later"

# The application fails because its database is gone: most requests are 5xx now. Both
# application-down (mostly-5xx) and high-error-rate (error-rate-majority) depend on
# database-issues: they are recorded on the database incident, not paged on their own.
access_lines 80 503
attached() {
    h_ctl incident show "$db_id" -o json | jq -e '
        [.timeline[] | select(.kind == "attached") | .data | "\(.runbook)/\(.symptom)"] as $a
        | any($a[]; . == "application-down/mostly-5xx") and any($a[]; . == "high-error-rate/error-rate-majority")' \
        >/dev/null
}
h_wait "the application's symptoms attached to incident $db_id" 15 attached
grep -q "symptom fingerprint=application-down/mostly-5xx/ attached to root incident id=$db_id" "$H_DIR/coordinator.log" ||
    h_fail "the attach of application-down/mostly-5xx is not logged"
sleep 1 # one more evaluation: nothing may open late
open=$(h_ctl incidents -o json)
jq -e --argjson id "$db_id" 'length == 1 and .[0].id == $id' <<<"$open" >/dev/null ||
    h_fail "only the database incident may be open, not separate pages: $open"
late=$(grep -E "incident (opened|reopened) id=[0-9]+ runbook=(application-down|high-error-rate)" "$H_DIR/coordinator.log" |
    grep -Ev "id=($app_id|$err_id) " || true)
[[ -z $late ]] || h_fail "an application incident was opened while the database was down: $late"
h_pass "3. the application's 5xx symptoms attached to database incident $db_id; one incident open"

h_ctl resolve "$db_id" --note "database restarted" >/dev/null || h_fail "resolve $db_id"

# ---- 4. performance degradation: slow on one of two nodes -------------------------------------
t0=$(date +%s.%N)
h_start_agent node-c "collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  http:
    interval: 1s
    timeout: 10s
    targets:
      - {name: web, url: \"http://127.0.0.1:${NGINX_PORT[web1]}/slow\"}"
h_wait "a performance-degradation incident" 40 one_open performance-degradation
took=$(since "$t0")
# node-a's and node-b's health checks are fast, node-c's page is slow: degraded on some nodes,
# SEV3 (SEV2 is slow everywhere).
perf_id=$(expect_incident performance-degradation SEV3)
h_ctl incident show "$perf_id" -o json | jq -e '.timeline[0] | tostring | test("http.time_ms")' >/dev/null ||
    h_fail "incident $perf_id was not opened by the response time: $(h_ctl incident show "$perf_id" -o json | jq -c '.timeline[0]')"
h_stop_agent node-c
h_pass "4. a 7 s page on node-c -> performance-degradation incident $perf_id, SEV3, ${took}s after node-c started"

# ---- 5. security incident ---------------------------------------------------------------------
t0=$(date +%s.%N)
for ((i = 0; i < 60; i++)); do
    echo "Nov 29 19:00:00 web1 sshd[4242]: Failed password for invalid user admin$i from 198.51.100.23 port $((40000 + i)) ssh2"
done >>"$L/auth.log"
h_wait "a security-incident incident" 15 one_open security-incident
took=$(since "$t0")
sec_id=$(expect_incident security-incident SEV2)
h_ctl signals -o json --node node-a --name log.failed_logins |
    jq -e 'any(.[]; .labels.source == "198.51.100.23" and .value == 60)' >/dev/null ||
    h_fail "the failed logins are not counted for their source: $(h_ctl signals -o json --node node-a --name log.failed_logins)"
h_pass "5. 60 failed logins from one source -> security-incident $sec_id, SEV2, ${took}s later"
