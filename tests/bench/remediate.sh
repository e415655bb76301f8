#!/usr/bin/env bash
# Remediation benchmark (issue 13, "Benchmark"), three parts in one run:
#
#   operator -> done   one no-op `exec` action (/bin/true, mode auto: no approval) run RUNS times
#                      with `vigilctl run noop --node bench-node` on a real local agent and its
#                      executor (signer file, catalog, capsule verified, replay cache, execve).
#                      latency = the DONE report's stored time (command_reports.at) - the wall
#                      clock just before vigilctl started, so vigilctl's own start and CURVE
#                      handshake are included. Also printed: the coordinator's part alone
#                      (command_requests.created_at -> DONE stored).
#                      Beside it, in the same run: `ansible localhost -c local -m command -a
#                      /bin/true` (Debian's ansible-core) timed ANSIBLE_RUNS times.
#   fan-out            vigil-sim enrolls FANOUT_AGENTS agents declaring one auto action; each
#                      verifies every capsule it gets against the coordinator's signing key
#                      (vg_capsule_verify, vg_capsule_policy_ok) and answers ACCEPTED, STARTED,
#                      DONE as durable reports. `vigilctl run noop-fan --all`; fanout_ms = the
#                      last DONE stored - the wall clock just before vigilctl started.
#   fault -> action    nginx SIGKILLed FAULT_TRIALS times (default 20); a runbook's auto step
#                      restarts it; latency = the kill -> the restart's STARTED report stored.
#
# command_reports.at is PostgreSQL's now(), the start of the ingest transaction that stores the
# report; the commit, and so the acknowledgement, follows within that transaction.
#
#   tests/bench/remediate.sh [RUNS]        (default 50; or RUNS= in the environment)
#   ANSIBLE_RUNS=N (default 20), FANOUT_AGENTS=N (default 1000), FAULT_TRIALS=N (default 20),
#   VIGIL_BUILD=build-dir
#
# Needs root (the catalog and the signer file are root's) and nginx; ansible-core for the
# comparison (without it ansible_p50_ms=NA ratio=NA).
#
# Last line: remediate: nodes=N p50_ms=X p99_ms=Y ansible_p50_ms=Z ratio=R fanout_ms=F
#   fault_to_action_p50_ms=A fault_to_action_p99_ms=B   (nodes = the fan-out's agents; ratio =
#   p50 / ansible_p50; percentiles nearest-rank)
# Targets (the design's), printed, never enforced: p50 <= 50 ms, ratio <= 0.1, fan-out to 1,000
# <= 2000 ms, fault -> action p50 <= 50 ms and p99 <= 150 ms.
set -euo pipefail
RUNS=${1:-${RUNS:-50}}
ANSIBLE_RUNS=${ANSIBLE_RUNS:-20}
FANOUT_AGENTS=${FANOUT_AGENTS:-1000}
FAULT_TRIALS=${FAULT_TRIALS:-20}
export H_HEARTBEAT=5s H_LOG_LEVEL=warn H_SELF_INTERVAL=10s
source "$(dirname "$0")/../lib/harness.sh"

for n in "$RUNS" "$ANSIBLE_RUNS" "$FANOUT_AGENTS" "$FAULT_TRIALS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] ||
        { echo "usage: $0 [RUNS]  (RUNS, ANSIBLE_RUNS, FANOUT_AGENTS, FAULT_TRIALS: positive integers)" >&2; exit 64; }
done
[[ -x /usr/sbin/nginx ]] || { echo "/usr/sbin/nginx not found (apt-get install nginx-light)" >&2; exit 69; }
[[ $(id -u) == 0 ]] || { echo "remediate.sh: needs root (the catalog and signer file are root's)" >&2; exit 77; }

h_setup
SIM_PID=""
nginx_pid() { [[ -z ${NGX:-} ]] || cat "$NGX/nginx.pid" 2>/dev/null || true; }
kill_nginx() { # SIGKILL the master and its workers at once: no graceful exit. KILLED_MS = the
    # wall clock just before the kill, taken after the pids are found (pgrep's /proc walk takes
    # ~10 ms here, which is the benchmark's time, not the fault's) without a fork (EPOCHREALTIME)
    local pid workers now
    pid=$(nginx_pid)
    [[ -n $pid ]] || return 0
    workers=$(pgrep -P "$pid" || true)
    now=$EPOCHREALTIME
    KILLED_MS=$((10#${now//[!0-9]/} / 1000))
    kill -KILL "$pid" $workers 2>/dev/null || true
    rm -f "$NGX/nginx.pid"
}
# The harness stops what it started; the simulator and nginx are ours (h_cleanup reads $?).
trap 'rc=$?; [[ -z $SIM_PID ]] || kill "$SIM_PID" 2>/dev/null; kill_nginx; (exit $rc); h_cleanup' EXIT
now_ms() { date +%s%3N; }
public_of() { sed -n 's/^signing-public-key: "\(.*\)"$/\1/p' "$1"; }
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

# The fault -> action part's runbook: nginx's master gone -> restart it, automatically.
NGX=$H_DIR/nginx
NGINX_PORT=$(h_free_port)
h_nginx_conf "$NGX" off "    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /healthz { return 200 \"ok\\n\"; }
    }"
sed '/^daemon off;$/d' "$NGX/nginx.conf" >"$NGX/nginx-daemon.conf" # the action daemonizes it
chmod -R go-w "$NGX"
mkdir -p "$H_DIR/runbooks" "$H_DIR/bin"
cat >"$H_DIR/runbooks/web-down.yaml" <<'EOF'
id: web-down
title: Web server down
severity: SEV2
reopen_window: 0s
symptoms:
  - {id: process-down, signal: proc.up, labels: {name: nginx}, below: 1, scope: any}
resolve:
  - {action: restart-nginx, mode: auto}
verify:
  - {signal: proc.up, labels: {name: nginx}, at_least: 1, scope: all, hold: 1s}
EOF
cat >"$H_DIR/bin/restart-nginx.sh" <<EOF
#!/bin/sh
/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx-daemon.conf" </dev/null >/dev/null 2>&1
EOF
chmod 755 "$H_DIR/bin/restart-nginx.sh"
# auto_min_interval 0s: every kill's incident may restart nginx by itself (the shipped 10 min
# would turn every restart after the first into a pending request).
h_start_coordinator "runbooks:
  dir: \"$H_DIR/runbooks\"
commands:
  auto_min_interval: 0s"
h_wait "the coordinator's signing key" 10 test -s "$H_DIR/coord/coordinator.sign"
COORD_SIGN=$(public_of "$H_DIR/coord/coordinator.sign")

# nginx runs before the agent watches it, or its absence would open the first incident.
nginx_up() { curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/healthz" 2>/dev/null; }
/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx-daemon.conf" </dev/null >"$H_DIR/nginx.start" 2>&1 ||
    h_fail "nginx did not start: $(cat "$H_DIR/nginx.start" "$NGX/logs/error.log" 2>/dev/null)"
h_wait "nginx answering" 10 nginx_up

# ---- operator -> done on a real agent --------------------------------------------------------
cat >"$H_DIR/signers.yaml" <<EOF
signers:
  - {name: coordinator, role: coordinator, public_key: "$COORD_SIGN"}
EOF
chmod 644 "$H_DIR/signers.yaml"
h_start_agent bench-node "signers_file: \"$H_DIR/signers.yaml\"
actions:
  - name: noop
    kind: exec
    argv: [/bin/true]
    root: true
    auto: true
  - name: restart-nginx
    kind: exec
    argv: [$H_DIR/bin/restart-nginx.sh]
    root: true
    auto: true
    timeout: 20s
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes:
    interval: 1s
    watch:
      - {name: nginx, pidfile: \"$NGX/nginx.pid\"}"
declares_noop() {
    [[ $(h_sql "select count(*) from agents where node = 'bench-node' and state = 'active'
                and actions @> '[{\"name\": \"noop\"}]'") -ge 1 ]]
}
h_wait "bench-node active, declaring noop" 30 declares_noop

request_state() { h_sql "select state from command_current where request_id = '$1'"; }
run_noop() { # run_noop START_FILE: one run, waits for its end state; prints the id
    local id state deadline=$((SECONDS + 20))
    now_ms >>"$1"
    id=$(h_ctl run noop --node bench-node -o json | jq -r 'if type == "array" then .[0].id else .id end')
    [[ $id == cmd-* ]] || h_fail "vigilctl run gave no command id"
    until state=$(request_state "$id") && [[ $state =~ ^(done|failed|refused|lost)$ ]]; do
        ((SECONDS < deadline)) || h_fail "command $id still $state after 20 s"
        sleep 0.005
    done
    [[ $state == done ]] || h_fail "command $id ended $state: $(h_ctl command show "$id")"
    echo "$id"
}
run_noop "$H_DIR/warmup.start" >/dev/null # warm-up: connections, caches; not counted
h_log "operator -> done: $RUNS runs of noop on bench-node"
: >"$H_DIR/runs.start"
: >"$H_DIR/runs.id"
for _ in $(seq 1 "$RUNS"); do
    run_noop "$H_DIR/runs.start" >>"$H_DIR/runs.id"
done
# Per run: vigilctl start -> DONE stored, and created_at -> DONE stored.
OP_MS=() COORD_MS=()
while read -r start id; do
    read -r created done_at < <(h_sql "select (extract(epoch from q.created_at) * 1000)::bigint,
            (extract(epoch from r.at) * 1000)::bigint
        from command_requests q join command_reports r on r.request_id = q.id and r.step = 'done'
        where q.id = '$id'" | tr '|' ' ')
    OP_MS+=($((done_at - start)))
    COORD_MS+=($((done_at - created)))
done < <(paste -d' ' "$H_DIR/runs.start" "$H_DIR/runs.id")
echo "operator -> done, $RUNS runs of an auto exec /bin/true on a real local agent:"
echo "  $(dist "vigilctl run start -> DONE stored" "${OP_MS[@]}")"
echo "  $(dist "  of which the coordinator on (request created -> DONE stored)" "${COORD_MS[@]}")"
p50=$(pct 0.5 "${OP_MS[@]}") p99=$(pct 0.99 "${OP_MS[@]}")

# ---- the reference: Ansible ad-hoc, same machine, same run ------------------------------------
ansible_p50=NA ratio=NA
if command -v ansible >/dev/null; then
    export ANSIBLE_HOME=$H_DIR/ansible ANSIBLE_LOCAL_TEMP=$H_DIR/ansible/tmp
    mkdir -p "$ANSIBLE_LOCAL_TEMP"
    ansible_run() { ansible localhost -c local -m command -a /bin/true >"$H_DIR/ansible.out" 2>&1; }
    ansible_run || h_fail "ansible failed: $(cat "$H_DIR/ansible.out")" # warm-up, not counted
    ANSIBLE_MS=()
    for _ in $(seq 1 "$ANSIBLE_RUNS"); do
        a=$(now_ms)
        ansible_run || h_fail "ansible failed: $(cat "$H_DIR/ansible.out")"
        ANSIBLE_MS+=($(($(now_ms) - a)))
    done
    echo "  $(dist "ansible localhost -c local -m command -a /bin/true" "${ANSIBLE_MS[@]}")"
    ansible_p50=$(pct 0.5 "${ANSIBLE_MS[@]}")
    ratio=$(awk -v x="$p50" -v y="$ansible_p50" 'BEGIN { printf "%.3f", x / y }')
else
    h_log "ansible not installed (apt-get install ansible-core): ansible_p50_ms=NA ratio=NA"
fi

# ---- fan-out to FANOUT_AGENTS simulated agents ------------------------------------------------
h_log "fan-out: $FANOUT_AGENTS simulated agents"
h_sim commands --secret-file "$H_DIR/enrollment.secret" --signing-key "$COORD_SIGN" \
    --agents "$FANOUT_AGENTS" --action noop-fan --expect 1 --seconds 180 \
    --node-prefix fan >"$H_DIR/sim.out" 2>"$H_DIR/sim.err" &
SIM_PID=$!
sim_ready() {
    kill -0 "$SIM_PID" 2>/dev/null || h_fail "vigil-sim exited: $(cat "$H_DIR/sim.out" "$H_DIR/sim.err")"
    grep -q '^sim: ready' "$H_DIR/sim.out"
}
h_wait "$FANOUT_AGENTS simulated agents enrolled" 120 sim_ready
# Enrolled, and the coordinator has stored every catalog (an Enroll's reply may precede it).
fan_declared() {
    [[ $(h_sql "select count(*) from agents where node like 'fan-%' and state = 'active'
                and actions @> '[{\"name\": \"noop-fan\"}]'") == "$FANOUT_AGENTS" ]]
}
h_wait "every simulated agent's catalog stored" 60 fan_declared
fan_done() {
    [[ $(h_sql "select count(*) from command_requests q join command_current s on s.request_id = q.id
                where q.action = 'noop-fan' and s.state = 'done'") \
        == "$FANOUT_AGENTS" ]]
}
fan_start=$(now_ms)
# --timeout: creating, signing and storing 1,000 requests can take longer than vigilctl's 5 s.
h_ctl --timeout 60s run noop-fan --all -o json >"$H_DIR/fanout.json"
h_wait "$FANOUT_AGENTS fan-out commands done" 120 fan_done
fan_last=$(h_sql "select (extract(epoch from max(r.at)) * 1000)::bigint
    from command_reports r join command_requests q on q.id = r.request_id
    where q.action = 'noop-fan' and r.step = 'done'")
fan_created=$(h_sql "select (extract(epoch from min(created_at)) * 1000)::bigint
    from command_requests where action = 'noop-fan'")
fanout=$((fan_last - fan_start))
# Where the time went: the last capsule signed, the last DONE the simulator sent (its clock).
fan_issued=$(h_sql "select (extract(epoch from max(c.issued_at)) * 1000)::bigint
    from command_capsules c join command_requests q on q.id = c.request_id
    where q.action = 'noop-fan'")
fan_reported=$(h_sql "select (extract(epoch from max(r.reported_at)) * 1000)::bigint
    from command_reports r join command_requests q on q.id = r.request_id
    where q.action = 'noop-fan' and r.step = 'done'")
sim_rc=0
wait "$SIM_PID" || sim_rc=$?
SIM_PID=""
((sim_rc == 0)) || h_log "warning: vigil-sim exited $sim_rc: $(cat "$H_DIR/sim.err")"
echo "fan-out of one auto action to $FANOUT_AGENTS simulated agents (each verifies its capsule):"
echo "  requests=$(jq 'if type == "array" then length else 1 end' "$H_DIR/fanout.json")" \
    "vigilctl_start_to_last_done_ms=$fanout" \
    "requests_created_to_last_done_ms=$((fan_last - fan_created))" \
    "last_capsule_issued_ms=$((fan_issued - fan_start)) last_done_sent_ms=$((fan_reported - fan_start))"
sim_line=$(grep '^sim: commands' "$H_DIR/sim.out" || true)
echo "  $sim_line"
first_capsule=$(sed -n 's/.* first_capsule_at_ms=\([0-9]*\).*/\1/p' <<<"$sim_line")
last_capsule=$(sed -n 's/.* last_capsule_at_ms=\([0-9]*\).*/\1/p' <<<"$sim_line")
[[ -z $first_capsule || -z $last_capsule ]] ||
    echo "  first_capsule_received_ms=$((first_capsule - fan_start))" \
        "last_capsule_received_ms=$((last_capsule - fan_start))  (from vigilctl's start)"

# ---- fault -> automatic action --------------------------------------------------------------
# nginx SIGKILLed (master and workers) FAULT_TRIALS times; the agent watches its master by
# pidfile (an exit is seen at once), the web-down runbook's auto step restarts it. latency =
# the restart's STARTED report stored (command_reports.at) - the wall clock just before the kill.
# Each trial waits until nginx answers again and the incident resolved itself (verify: up for
# 1 s), then 2 s — what the agent measures within 2 s of a command's end carries the command's id
# and raises nothing, so a crash right after a restart is seen once that window passed; the trials
# measure faults independent of the last restart — then a random 0-1 s, so the kill falls at a
# random phase of the agent's cycles.
nginx_watched() {
    [[ $(h_ctl signals -o json --node bench-node --name proc.up |
        jq -r '[.[] | select(.labels.name == "nginx")] | sort_by(.ts) | last | .value // empty') == 1 ]]
}
h_wait "the agent sees nginx up" 30 nginx_watched
quiet() { # nginx up and no web-down incident open
    nginx_up && [[ $(h_sql "select count(*) from incidents where runbook = 'web-down'
                            and state not in ('resolved', 'closed')") == 0 ]]
}
last_n=$(h_sql "select coalesce(max(n), 0) from command_requests")
started_after() { # started_after N: "STARTED stored|request created|incident opened" (ms) of
    # the first restart-nginx request past n=N that has a STARTED report
    h_sql "select (extract(epoch from r.at) * 1000)::bigint,
            (extract(epoch from q.created_at) * 1000)::bigint,
            (extract(epoch from i.opened_at) * 1000)::bigint
        from command_reports r join command_requests q on q.id = r.request_id
        left join incidents i on i.id = q.incident_id
        where q.action = 'restart-nginx' and q.n > $1 and r.step = 'started'
        order by q.n limit 1"
}
got_started() { row=$(started_after "$last_n") && [[ -n $row ]]; }
h_log "fault -> action: nginx SIGKILLed $FAULT_TRIALS times"
F2A_MS=() OPEN_MS=() REQ_MS=() RUN_MS=()
for trial in $(seq 1 "$FAULT_TRIALS"); do
    h_wait "nginx up and no open web-down incident before trial $trial" 60 quiet
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 2 + r / 32768 }')"
    KILLED_MS=""
    kill_nginx
    [[ -n $KILLED_MS ]] || h_fail "trial $trial: nginx had no pid to kill"
    killed=$KILLED_MS
    h_wait "trial $trial: the automatic restart started" 30 got_started
    IFS='|' read -r started created opened <<<"$row"
    F2A_MS+=($((started - killed)))
    [[ -z $opened ]] || OPEN_MS+=($((opened - killed)))
    REQ_MS+=($((created - ${opened:-$killed})))
    RUN_MS+=($((started - created)))
    last_n=$(h_sql "select coalesce(max(n), 0) from command_requests")
done
h_wait "nginx up after the last trial" 30 nginx_up
modes=$(h_sql "select string_agg(distinct q.mode || '/' || q.requested_by || '/' || s.state, ',')
    from command_requests q join command_current s on s.request_id = q.id
    where q.action = 'restart-nginx'")
echo "fault -> automatic action, $FAULT_TRIALS SIGKILLs of nginx (requests mode/by/state: $modes):"
echo "  $(dist "kill -> the auto restart's STARTED stored" "${F2A_MS[@]}")"
((${#OPEN_MS[@]} == 0)) || echo "  $(dist "  kill -> incident opened" "${OPEN_MS[@]}")"
echo "  $(dist "  incident opened -> request created (auto step)" "${REQ_MS[@]}")"
echo "  $(dist "  request created -> STARTED stored" "${RUN_MS[@]}")"
echo "  trials (ms): ${F2A_MS[*]}"
f2a_p50=$(pct 0.5 "${F2A_MS[@]}") f2a_p99=$(pct 0.99 "${F2A_MS[@]}")

echo "targets: p50 <= 50 ms, ratio <= 0.1, fan-out to 1,000 <= 2000 ms," \
    "fault -> action p50 <= 50 ms and p99 <= 150 ms (printed, not enforced)"
echo "remediate: nodes=$FANOUT_AGENTS p50_ms=$p50 p99_ms=$p99 ansible_p50_ms=$ansible_p50" \
    "ratio=$ratio fanout_ms=$fanout fault_to_action_p50_ms=$f2a_p50 fault_to_action_p99_ms=$f2a_p99"
