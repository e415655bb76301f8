#!/usr/bin/env bash
# `make demo`: a newcomer's first look, in under a minute. Starts what `make run` starts (the
# coordinator with its private PostgreSQL, one agent) plus an nginx "application" with a health
# endpoint, then plays the application-down runbook: kills nginx, shows the incident opening with
# its severity and timeline, brings nginx back, shows it verified and resolved, and stops
# everything. All state lives in a fresh temporary directory on free ports: var/ and a running
# `make run` are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build} # relative to the tree, or absolute
[[ $build == /* ]] && bin=$build || bin=$top/$build
T0=$SECONDS

# ---- narration --------------------------------------------------------------------------------
if [[ -t 1 ]]; then B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'; else B="" D="" R=""; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$R"; }
say() { printf '%s\n' "$*" | fold -s -w 96 | sed 's/^/    /'; }
show() { # show ARGS...: run vigilctl and print its output, indented
    printf '\n    %s$ vigilctl %s%s\n' "$D" "$*" "$R"
    ctl "$@" | sed 's/^/    /'
    echo
}
fail() {
    printf '\n%sdemo: FAILED: %s%s\n' "$B" "$*" "$R" >&2
    local f
    for f in "$dir"/coordinator.log "$dir"/agent.log "$dir"/nginx/logs/error.log; do
        [[ -s $f ]] || continue
        printf -- '----- %s (last 15 lines) -----\n' "${f#"$dir"/}" >&2
        tail -n 15 "$f" >&2
    done
    KEEP=1
    exit 1
}
# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds, or fail saying what did not happen.
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || fail "$what did not happen within ${timeout}s"
        sleep 0.2
    done
}

for b in vigil-coordinator vigil-agent vigil-agent-exec vigilctl; do
    [[ -x $bin/$b ]] || { echo "demo: $bin/$b not found: run 'make build' first" >&2; exit 69; }
done
[[ -x /usr/sbin/nginx ]] || { echo "demo: /usr/sbin/nginx not found: run 'make deps' (nginx-light)" >&2; exit 69; }
command -v jq >/dev/null || { echo "demo: jq not found: run 'make deps'" >&2; exit 69; }

# ---- a private directory, free ports ----------------------------------------------------------
dir=$(mktemp -d /tmp/vigil-demo.XXXXXX)
# Others may traverse (PostgreSQL runs as postgres, the agent as nobody) but not list or read.
chmod 711 "$dir"
mkdir -p "$dir/coordinator" "$dir/agent" "$dir/nginx/logs" "$dir/nginx/tmp"
chmod 711 "$dir/coordinator"
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range
        (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
port_agents=$(free_port) port_admin=$(free_port) port_http=$(free_port) port_app=$(free_port)
port_pager=$(free_port) port_status=$(free_port)

coord_pid="" agent_pid="" nginx_pid="" sink_pid="" KEEP=0
stop_all() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    [[ -n $agent_pid ]] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [[ -n $nginx_pid ]] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    [[ -n $coord_pid ]] && kill -TERM "$coord_pid" 2>/dev/null && wait "$coord_pid" 2>/dev/null
    [[ -n $sink_pid ]] && kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    # A coordinator that did not stop cleanly may leave its private PostgreSQL running.
    local pgdata
    pgdata=$(readlink -f "$dir/coordinator/pgdata" 2>/dev/null)
    if [[ -n $pgdata && -f $pgdata/postmaster.pid ]]; then
        local pgbin
        pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
        if [[ $(id -u) == 0 ]]; then
            runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
        else
            "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
        fi
    fi
    if ((KEEP || (status != 0 && status != 130))); then # a failure, not a Ctrl-C
        echo "demo: everything stopped; logs kept in $dir" >&2
    else
        rm -rf "$dir"
        [[ -n $pgdata && $pgdata != "$dir"/* ]] && rm -rf "$(dirname "$pgdata")"
        echo "demo: everything stopped and removed."
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

# ---- a local receiver for the pages --------------------------------------------------------------
python3 "$top/tests/tools/http_sink.py" --port "$port_pager" --log "$dir/pages.jsonl" >"$dir/pager.log" 2>&1 &
sink_pid=$!
# pages WHO: the messages the receiver got for WHO, one line each: "HH:MM:SS subject"
pages() {
    jq -r --arg p "/$1" 'select(.path == $p) | (.body | fromjson) as $b
        | "\(.time | strftime("%H:%M:%S")) \($b.subject)"' "$dir/pages.jsonl" 2>/dev/null
}
show_pages() {
    printf '\n    %s$ (the receiver) pages for %s%s\n' "$D" "$1" "$R"
    pages "$1" | sed 's/^/    /'
    echo
}

# ---- keys and configuration, as make run writes them -----------------------------------------
key_of() { sed -n 's/^public-key: *"\(.*\)"/\1/p' "$1"; }
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/enrollment.secret")
"$bin/vigilctl" keygen --out "$dir/coordinator/coordinator.key" >/dev/null
"$bin/vigilctl" keygen --out "$dir/admin.key" >/dev/null
coord_pub=$(key_of "$dir/coordinator/coordinator.key")
admin_pub=$(key_of "$dir/admin.key")
admin_sec=$(sed -n 's/^secret-key: *"\(.*\)"/\1/p' "$dir/admin.key")

# The agent's network side runs as nobody when nobody can reach the directory (see run.sh).
agent_user="" allow_root=false
if [[ $(id -u) -eq 0 ]]; then
    if runuser -u nobody -- test -x "$dir" 2>/dev/null; then agent_user=nobody; else allow_root=true; fi
fi

# The shipped runbooks, with application-down's waits shortened so the demo fits in a minute.
rb=$dir/runbooks
mkdir -p "$rb"
cp "$top"/runbooks/*.yaml "$rb"/
sed -i -e 's/^    for: 10s$/    for: 2s/' -e 's/ hold: 2m}/ hold: 5s}/' -e 's/^    hold: 5m$/    hold: 5s/' \
    "$rb/application-down.yaml"
[[ $(grep -c -e '^    for: 2s$' -e 'hold: 5s' "$rb/application-down.yaml") == 4 ]] ||
    { echo "demo: runbooks/application-down.yaml changed shape: its for/hold durations were not shortened" >&2; exit 1; }

cat >"$dir/coordinator.yaml" <<YAML
# Written by make demo. Reference: deploy/config/coordinator.yaml
state_dir: "$dir/coordinator"
listen:
  agents: "tcp://127.0.0.1:$port_agents"
  admin: "tcp://127.0.0.1:$port_admin"
http:
  address: "127.0.0.1"
  port: $port_http
enrollment:
  secret_file: "$dir/enrollment.secret"
admin:
  public_key: "$admin_pub"
  name: admin
runbooks:
  dir: "$rb"
# The public status page (docs/status-page.md): one component, affected by the runbook played here.
status_page:
  port: $port_status
  name: "Demo status"
  components:
    - {name: "Web application", runbooks: [application-down]}
# The on-call team: one person on a one-person rotation, paged through a generic webhook that
# lands on a local receiver (tests/tools/http_sink.py), and a manager who would be paged if
# nobody acknowledged within 10 minutes.
paging:
  contacts:
    - {name: alice, webhook: "http://127.0.0.1:$port_pager/alice"}
    - {name: manager, webhook: "http://127.0.0.1:$port_pager/manager"}
  schedules:
    - {name: primary, timezone: UTC, handover: "Mon 09:00", start: "2026-01-05", users: [alice]}
  policies:
    - name: default
      levels:
        - {delay: 0s, targets: ["schedule:primary"]}
        - {delay: 10m, targets: ["contact:manager"]}
    - name: security   # the shipped security runbook's policy
      levels:
        - {delay: 0s, targets: ["schedule:primary", "contact:manager"]}
YAML

# Only the application is watched: the machine's own CPU and disks (host) and its listening
# sockets (netstat: nginx coming back is a new listener) are not what this demo is about.
cat >"$dir/agent.yaml" <<YAML
# Written by make demo. Reference: deploy/config/agent.yaml
node: "demo-web1"
state_dir: "$dir/agent"
user: "$agent_user"
allow_root: $allow_root
coordinator:
  endpoint: "tcp://127.0.0.1:$port_agents"
  public_key: "$coord_pub"
enrollment:
  secret_file: "$dir/enrollment.secret"
heartbeat_interval: 1s
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes:
    interval: 1s
    watch:
      - {name: nginx, pidfile: "$dir/nginx/nginx.pid"}
  logs:
    interval: 1s
    files:
      - {name: app, path: "$dir/nginx/logs/access.log", format: access}
  http:
    interval: 1s
    timeout: 1s
    targets:
      - {name: app, url: "http://127.0.0.1:$port_app/healthz"}
YAML

(umask 077 && cat >"$dir/vigilctl.yaml" <<YAML
coordinator: "tcp://127.0.0.1:$port_admin"
coordinator_public_key: "$coord_pub"
public_key: "$admin_pub"
secret_key: "$admin_sec"
YAML
)
ctl() { VIGIL_CONFIG="$dir/vigilctl.yaml" "$bin/vigilctl" "$@"; }

cat >"$dir/nginx/nginx.conf" <<CONF
$([[ $(id -u) == 0 ]] && echo "user root;")
daemon off;
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/logs/error.log;
events { worker_connections 64; }
http {
    access_log $dir/nginx/logs/access.log combined;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port_app;
        location = /healthz { return 200 "ok\n"; }
        location / { return 200 "hello from the demo application\n"; }
    }
}
CONF

# ---- start -------------------------------------------------------------------------------------
step "Starting Vigil: the coordinator, its private PostgreSQL, and one agent"
say "Everything runs from $dir on free ports, so var/ and a running 'make run' are not touched."
"$bin/vigil-coordinator" -c "$dir/coordinator.yaml" >>"$dir/coordinator.log" 2>&1 &
coord_pid=$!
coordinator_up() {
    kill -0 "$coord_pid" 2>/dev/null || fail "the coordinator exited during start-up"
    curl -fsS -o /dev/null "http://127.0.0.1:$port_http/healthz" 2>/dev/null
}
wait_for "the coordinator starting (its first start creates the database)" 60 coordinator_up
say "The coordinator is up (it created and started its own PostgreSQL cluster) and has loaded the shipped runbooks (the document's five, and one for an agent that can no longer act)."

nginx_up() {
    kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited: $(tail -3 "$dir/nginx/logs/error.log")"
    curl -fsS -o /dev/null "http://127.0.0.1:$port_app/healthz" 2>/dev/null
}
start_nginx() {
    /usr/sbin/nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >>"$dir/nginx/logs/stderr.log" 2>&1 &
    nginx_pid=$!
    wait_for "nginx answering on /healthz" 10 nginx_up
}
start_nginx
say "The application: nginx on 127.0.0.1:$port_app, a master process and two workers, with a health endpoint /healthz that answers 200."

"$bin/vigil-agent" -c "$dir/agent.yaml" >>"$dir/agent.log" 2>&1 &
agent_pid=$!
# latest NAME LABEL VALUE: the agent's latest NAME{LABEL} is VALUE.
latest_is() {
    ctl signals -o json --node demo-web1 --name "$1" 2>/dev/null |
        jq -e --arg k "${2%%=*}" --arg v "${2#*=}" --argjson want "$3" \
            '[.[] | select(.labels[$k] == $v)] | sort_by(.ts) | last | .value == $want' >/dev/null
}
agent_sees_app() {
    kill -0 "$agent_pid" 2>/dev/null || fail "the agent exited during start-up"
    latest_is http.up target=app 1 && latest_is proc.up name=nginx 1
}
wait_for "the agent enrolling and reporting nginx healthy" 30 agent_sees_app
say "The agent enrolled with the coordinator. Every second it calls /healthz (http.up) and it watches nginx's master process, found through its pidfile (proc.up); it also follows nginx's access log for the error rate."
show signals --node demo-web1 --name '*.up'

step "The runbook this demo plays: application-down (runbooks/application-down.yaml)"
say "It opens an incident when the application's process exits (at once) or its health check fails for 10 s, and resolves it when the health check and the process have been up for 2 minutes and the error rate has stayed below 1 % for 5 minutes."
say "So that this demo fits in a minute, its copy here waits 2 s instead of 10 s and holds for 5 s instead of 2 and 5 minutes. Nothing else is changed."
show incidents

# ---- the fault ---------------------------------------------------------------------------------
step "Killing nginx: the master and its workers, with SIGKILL (a crash, not a clean stop)"
workers=$(cat "/proc/$nginx_pid"/task/*/children 2>/dev/null || true)
killed=$EPOCHREALTIME
{ # stderr: the shell's own "Killed" report of its job is not part of the story
    # shellcheck disable=SC2086 # the workers' pids, one word each
    kill -KILL "$nginx_pid" $workers
    wait "$nginx_pid" || true
} 2>/dev/null
nginx_pid=""
open_incident() { ctl incidents -o json 2>/dev/null | jq -r '[.[] | select(.runbook == "application-down") | .id] | min // empty'; }
opened() { inc=$(open_incident) && [[ -n $inc ]]; }
inc=""
wait_for "an application-down incident opening" 15 opened
took=$(awk -v a="$killed" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
sev=$(ctl incidents -o json | jq -r --argjson id "$inc" '.[] | select(.id == $id) | .severity')
say "Within ${took} s: the agent saw the master process exit the moment it happened (through a pidfd, no polling), sent proc.up = 0 at once, and the coordinator's rule engine matched it against the runbook and opened incident $inc."
case $sev in
SEV1) say "Its severity is SEV1, a complete outage: the application is down on every node that runs it (here its only node). Down on only some of its nodes, it would be SEV2. SEV1 must be acknowledged within 15 minutes: see DUE." ;;
*) say "Its severity is $sev: the application is down on some of its nodes (SEV1 when it is down on all of them). See DUE for the time left to acknowledge it." ;;
esac
show incidents
# The failing health check is a second symptom of the same fault: it joins the incident (a
# "symptom" event on its timeline) once it has failed for its `for:`.
health_check_joined() {
    ctl incident show "$inc" -o json 2>/dev/null |
        jq -e 'any(.timeline[]; .kind == "symptom" and (.text | test("http.up")))' >/dev/null
}
deadline=$((SECONDS + 8))
until health_check_joined || ((SECONDS >= deadline)); do sleep 0.2; done
if health_check_joined; then
    say "Meanwhile the health check failed too, for its (shortened) 2 s: one more symptom of the same fault, recorded on the same incident rather than paged again. The timeline says what happened, when and who did it; it is never rewritten:"
else
    say "The timeline says what happened, when and who did it; it is never rewritten:"
fi
show incident show "$inc"
paged() { [[ -n $(pages alice) ]]; }
wait_for "the page reaching alice" 10 paged
say "And the on-call person was paged: the runbook's escalation policy pages the primary on-call at once (the manager would follow at 10 minutes if nobody acknowledged with 'vigilctl ack $inc'). Here the page lands on a local receiver standing in for Slack, a webhook, e-mail or PagerDuty:"
show_pages alice

status_summary() { # the public JSON, shortened
    curl -fsS "http://127.0.0.1:$port_status/api/v2/summary.json" | jq '{status: .status.description,
        components: [.components[] | "\(.name): \(.status)"],
        incidents: [.incidents[] | {name, status, updates: [.incident_updates[].body]}]}' |
        sed 's/^/    /'
}
say "What the users see is an operator's decision: the public status page (http://127.0.0.1:$port_status/) shows nothing of this incident until someone publishes an update, in their own words:"
ctl update "$inc" "The web application is down; we are restoring it." --public >/dev/null
show update "$inc" "We found the crashed server and are bringing it back." --public
say "Its Statuspage v2 JSON (/api/v2/summary.json; the page itself is plain HTML and CSS): the component mapped to the runbook is degraded, the node's name and the timeline stay private:"
status_summary

# ---- recovery ----------------------------------------------------------------------------------
step "Bringing nginx back"
start_nginx
wait_for "the agent reporting nginx up again" 20 agent_sees_app
say "nginx answers again; the agent found the new master through the pidfile and reports the health check and the process up."
say "The incident does not close just because one check passed: the runbook's 'verify' conditions must hold for their 'hold' time (5 s here) before Vigil calls it resolved."
resolved() {
    ctl incident show "$inc" -o json 2>/dev/null | jq -e '.state == "resolved"' >/dev/null
}
wait_for "incident $inc resolving itself once the runbook's verify conditions held (5 s)" 30 resolved
took=$(awk -v a="$killed" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
resolution=$(ctl incident show "$inc" -o json | jq -r '[.timeline[] | select(.kind == "resolved")] | last')
by=$(jq -r '.actor' <<<"$resolution")
if [[ $by == vigil ]]; then
    say "Verified and resolved by Vigil itself, ${took} s after the crash. Its note on the timeline says what held: $(jq -r '.text' <<<"$resolution")"
else
    say "Resolved by $by, ${took} s after the crash: $(jq -r '.text' <<<"$resolution")"
fi
show incident show "$inc"
told() { pages alice | grep -q resolved; }
wait_for "alice told of the resolution" 10 told
say "Whoever was paged is told that it is over:"
show_pages alice
show incidents --status all
say "And the status page: the incident moved to its history, the component is operational again ($(curl -fsS "http://127.0.0.1:$port_status/api/v2/status.json" | jq -r .status.description)):"
status_summary

step "Done in $((SECONDS - T0)) s. Stopping everything."
say "To keep Vigil running and try it yourself: make run (then vigilctl incidents, vigilctl signals). The runbooks are in runbooks/, their format in docs/."
