#!/usr/bin/env bash
# Service actions end to end, on a cluster agent (role: cluster) with a real coordinator,
# executor, PostgreSQL and Redis: vigil-agent-action runs them as the agent's user, never root.
#   - a query running longer than the probe's long_running opens an incident; its runbook's
#     terminate step (approve) waits for an operator, runs once approved, the query is gone and
#     the incident verifies and resolves itself
#   - FLUSHALL is destructive: it waits for a second operator, an admin, then empties Redis
#   - the catalog's own statement (DELETE FROM sessions older than an argument from an enum)
#     deletes exactly the old rows; a value outside the enum is refused by the node and nothing
#     is deleted; an action the cluster agent does not declare is refused by the coordinator
#   - vigilctl run --cluster scales a deployment through a loopback Kubernetes API server
#     (tests/tools/kube_apiserver.py); the output in the vault holds the state before and after
#   - a runbook's investigate entry with on: cluster is collected from the cluster agent, the
#     others from the incident's node
#   - a node agent (no role: cluster) with a kubernetes action does not start
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root (the catalog and signer file are root's)"; exit 77; }
command -v redis-server >/dev/null || { h_log "SKIP: needs redis-server"; exit 77; }

h_setup
public_of() { sed -n 's/^signing-public-key: "\(.*\)"$/\1/p' "$1"; }
REDIS_PID=""
PSQL_PID=""
KUBE_PID=""
on_exit() {
    local status=$?
    set +e
    h_stop_agent cluster
    h_stop_agent web-1
    [[ -n $PSQL_PID ]] && kill "$PSQL_PID" 2>/dev/null
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null
    [[ -n $KUBE_PID ]] && kill "$KUBE_PID" 2>/dev/null
    (exit "$status")
    h_cleanup
}
trap on_exit EXIT

# ---- Redis, with keys in two databases -------------------------------------------------------
REDIS_PORT=$(h_free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$H_DIR" >"$H_DIR/redis.log" 2>&1 &
REDIS_PID=$!
h_wait "redis" 10 redis-cli -p "$REDIS_PORT" ping
redis-cli -p "$REDIS_PORT" mset a 1 b 2 c 3 >/dev/null
redis-cli -p "$REDIS_PORT" -n 3 set d 4 >/dev/null

# ---- a Kubernetes API server, its kubeconfig readable by the agent's user -------------------
KUBE=$H_DIR/kube
mkdir -p "$KUBE"
python3 "$VIGIL_SRC/tests/tools/kube_apiserver.py" --dir "$KUBE" >"$H_DIR/kube.log" 2>&1 &
KUBE_PID=$!
h_wait "the API server" 20 test -s "$KUBE/port"
# In-cluster style, as the ServiceAccount's token is mounted for the cluster agent: the token is
# root's only (0600), so the agent's user cannot read it; the executor reads it and passes it on.
chmod 755 "$KUBE"
chmod 644 "$KUBE/ca.crt"
chmod 600 "$KUBE/token"
kube_state() {
    curl -fsS --cacert "$KUBE/ca.crt" -H "Authorization: Bearer $(cat "$KUBE/token")" \
        "https://127.0.0.1:$(cat "$KUBE/port")/_test/state"
}

# ---- the coordinator, with a runbook for slow queries ---------------------------------------
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/slow-queries.yaml" <<'EOF'
id: slow-queries
title: Slow queries
severity: SEV3
reopen_window: 0s
symptoms:
  - {id: long-running, signal: pg.long_running, labels: {target: main}, above: 0, scope: any}
resolve:
  - {action: terminate-long-queries, mode: approve, args: {older_than: 2s}}
verify:
  - {signal: pg.long_running, labels: {target: main}, at_most: 0, scope: all, hold: 2s}
EOF
cat >"$RB/web-check.yaml" <<'EOF'
id: web-check
title: Web check
severity: SEV4
symptoms:
  - {id: up, signal: host.cpu.busy_pct, above: -1, scope: any}  # web-1 only: the cluster agent watches no host
investigate:
  - {kind: host}
  - {kind: redis, args: {target: cache}, on: cluster}
verify:
  - {signal: host.cpu.busy_pct, below: -1, scope: all, hold: 1h}
EOF
h_write_coordinator_config "runbooks:
  dir: \"$RB\""
sed -i "s|^admin:|admin:\n  signing_public_key: \"$(public_of "$H_DIR/admin.key.sign")\"|" \
    "$H_DIR/coordinator.yaml"
"$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" >>"$H_DIR/coordinator.log" 2>&1 &
H_COORD_PID=$!
h_wait "coordinator healthy" 90 h_coordinator_healthy
echo "signing_key_file: \"$H_DIR/admin.key.sign\"" >>"$H_DIR/vigilctl.yaml"

new_operator() { # new_operator NAME ROLE: keys, an operator, and a vigilctl configuration
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/$1.key" >/dev/null || h_fail "keygen for $1"
    h_write_ctl_config "$H_DIR/$1.yaml" "$H_DIR/$1.key"
    (umask 077 && echo "signing_key_file: \"$H_DIR/$1.key.sign\"" >>"$H_DIR/$1.yaml")
    h_ctl operators add "$1" --role "$2" --public-key "$(h_key_public "$H_DIR/$1.key")" \
        --signing-key "$(public_of "$H_DIR/$1.key.sign")" >/dev/null || h_fail "operators add $1"
}
new_operator bob responder
new_operator carol admin
cat >"$H_DIR/signers.yaml" <<EOF
signers:
  - {name: coordinator, role: coordinator, public_key: "$("$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" --print-signing-key)"}
  - {name: admin, role: admin, public_key: "$(public_of "$H_DIR/admin.key.sign")"}
  - {name: bob, role: responder, public_key: "$(public_of "$H_DIR/bob.key.sign")"}
  - {name: carol, role: admin, public_key: "$(public_of "$H_DIR/carol.key.sign")"}
EOF
chmod 644 "$H_DIR/signers.yaml"

# ---- the cluster agent ---------------------------------------------------------------------
# vigil-agent-action runs as the agent's user, which must be able to reach it: a root-owned
# copy outside the build tree (a clone under /root is 0700), as a package installs it. The
# agent's user is postgres, which may use the embedded cluster's socket directory.
mkdir -p "$H_DIR/bin"
install -m 0755 "$VIGIL_BUILD/vigil-agent-action" "$H_DIR/bin/vigil-agent-action"
cat >"$H_DIR/bin/as-user.sh" <<'EOF'
#!/bin/sh
sed -i '/^user: ""$/d' "$3"
exec "$@"
EOF
chmod 755 "$H_DIR/bin/as-user.sh"
pg_sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && pg_sock=$H_DIR/coord/pgsock
H_AGENT_WRAP=("$H_DIR/bin/as-user.sh")
h_start_agent cluster "user: postgres
role: cluster
action_path: \"$H_DIR/bin/vigil-agent-action\"
kubernetes:
  server: \"https://127.0.0.1:$(cat "$KUBE/port")\"
  token_file: \"$KUBE/token\"
  ca_file: \"$KUBE/ca.crt\"
signers_file: \"$H_DIR/signers.yaml\"
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  processes: {interval: 0s}
  postgres:
    interval: 1s
    long_running: 2s
    targets: [{name: main, conninfo: \"host=$pg_sock port=5432 dbname=vigil user=vigil\"}]
  redis:
    interval: 1s
    targets: [{name: cache, address: \"127.0.0.1:$REDIS_PORT\"}]
actions:
  - name: terminate-long-queries
    kind: postgres
    op: terminate
    target: main
    timeout: 20s
    params: [{name: older_than, duration: {min: 1s, max: 1h}}]
  - name: purge-sessions
    kind: postgres
    op: statement
    target: main
    statement: \"DELETE FROM sessions WHERE created_at < now() - \$1::interval\"
    params: [{name: age, enum: [1 hour]}]
  - {name: flush-cache, kind: redis, op: flushall, target: cache, destructive: true}
  - name: scale-deployment
    kind: kubernetes
    op: scale
    params:
      - {name: namespace, enum: [reconciliation]}
      - {name: deployment, enum: [backend, frontend]}
      - {name: replicas, int: {min: 1, max: 10}}"
h_wait "the cluster agent's catalog" 30 grep -q "node=cluster declares 4 actions" "$H_DIR/coordinator.log"
grep -q "node=cluster role=cluster" "$H_DIR/coordinator.log" ||
    h_fail "the coordinator did not log the agent's role"

as() {
    local who=$1
    shift
    VIGIL_CONFIG="$H_DIR/$who.yaml" "$VIGIL_BUILD/vigilctl" "$@"
}
state_of() { h_ctl command show "$1" -o json | jq -r .state; }
wait_state() { # wait_state ID STATE
    h_wait "$1 $2" 30 bash -c "[[ \$(VIGIL_CONFIG='$H_DIR/vigilctl.yaml' '$VIGIL_BUILD/vigilctl' command show '$1' -o json | jq -r .state) == '$2' ]]"
}

# ---- a long query: incident, approval, terminated, verified ---------------------------------
psql -X -q -h "$pg_sock" -p 5432 -U vigil -d vigil -c "select pg_sleep(600)" \
    >"$H_DIR/psql.out" 2>&1 &
PSQL_PID=$!
incident_id() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "slow-queries")][0].id // empty'; }
has_incident() { [[ -n $(incident_id) ]]; }
h_wait "the slow-queries incident" 30 has_incident
inc=$(incident_id)
pending() { h_ctl commands --incident "$inc" -o json | jq -r '[.[] | select(.action == "terminate-long-queries" and .state == "pending")][0].id // empty'; }
has_pending() { [[ -n $(pending) ]]; }
h_wait "the terminate step waiting for approval" 20 has_pending
cmd=$(pending)
[[ $(h_ctl command show "$cmd" -o json | jq -r .node) == cluster ]] || h_fail "the step is not for the cluster agent"
sleep 1
kill -0 "$PSQL_PID" 2>/dev/null || h_fail "the query ended before anyone approved: $(cat "$H_DIR/psql.out")"
as bob approve "$cmd" >"$H_DIR/approve.out" || h_fail "bob's approve: $(cat "$H_DIR/approve.out")"
wait_state "$cmd" done
h_ctl command show "$cmd" -o json >"$H_DIR/terminate.json"
jq -e '.exit_status == 0' "$H_DIR/terminate.json" >/dev/null || h_fail "terminate: $(cat "$H_DIR/terminate.json")"
h_wait "psql to see its query terminated" 10 bash -c "! kill -0 $PSQL_PID 2>/dev/null"
grep -q "terminating connection due to administrator command" "$H_DIR/psql.out" ||
    h_fail "psql did not report the termination: $(cat "$H_DIR/psql.out")"
PSQL_PID=""
[[ $(h_sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(600)%'") == 0 ]] ||
    h_fail "the long query is still there"
resolved() { [[ $(h_ctl incident show "$inc" -o json | jq -r .state) == resolved ]]; }
h_wait "the incident to verify and resolve itself" 30 resolved
h_pass "a long query: the terminate step waits for approval, runs on the cluster agent, the query is gone, the incident resolves"

# The account of the run is evidence: the output in the vault names the backend's query.
output_stored() {
    [[ $(h_ctl command show "$cmd" -o json |
        jq '[.evidence[] | select(.kind == "command_output" and .status == "stored")] | length') == 1 ]]
}
h_wait "the terminate output in the vault" 30 output_stored
out_id=$(h_ctl command show "$cmd" -o json | jq -r '.evidence[] | select(.kind == "command_output") | .id')
h_ctl evidence get "$out_id" --out "$H_DIR/terminate.out" >/dev/null
grep -q "pg_sleep(600)" "$H_DIR/terminate.out" && grep -q "terminated 1 backend" "$H_DIR/terminate.out" ||
    h_fail "the command's output does not account for the query: $(head -c 600 "$H_DIR/terminate.out")"
h_pass "the command's output, in the vault, names the query it terminated"

# ---- FLUSHALL: destructive, two operators --------------------------------------------------
as bob run flush-cache --cluster -o json >"$H_DIR/flush.json" || h_fail "run flush-cache: $(cat "$H_DIR/flush.json")"
flush=$(jq -r '.[0].id' "$H_DIR/flush.json")
jq -e '.[0].state == "pending" and .[0].node == "cluster"' "$H_DIR/flush.json" >/dev/null ||
    h_fail "a destructive action did not wait: $(cat "$H_DIR/flush.json")"
sleep 1
[[ $(redis-cli -p "$REDIS_PORT" dbsize) == 3 ]] || h_fail "Redis was flushed on one approval"
as carol approve "$flush" >/dev/null || h_fail "carol's approve"
wait_state "$flush" done
[[ $(redis-cli -p "$REDIS_PORT" dbsize) == 0 && $(redis-cli -p "$REDIS_PORT" -n 3 dbsize) == 0 ]] ||
    h_fail "FLUSHALL left keys"
h_pass "FLUSHALL waits for a second operator, an admin, then empties every database"

# ---- the catalog's statement -----------------------------------------------------------------
h_sql "CREATE TABLE sessions (id int, created_at timestamptz);
       INSERT INTO sessions VALUES (1, now() - interval '3 hours'), (2, now() - interval '2 hours'),
                                   (3, now() - interval '5 minutes')" >/dev/null
bad=$(as bob run purge-sessions --cluster --arg "age=1 second" -o json | jq -r '.[0].id')
wait_state "$bad" refused
h_ctl command show "$bad" -o json | jq -r '.steps[-1].reason' >"$H_DIR/refused.txt"
grep -q 'argument "age"' "$H_DIR/refused.txt" || h_fail "the refusal does not name the argument: $(cat "$H_DIR/refused.txt")"
[[ $(h_sql "SELECT count(*) FROM sessions") == 3 ]] || h_fail "a refused statement deleted rows"
good=$(as bob run purge-sessions --cluster --arg "age=1 hour" -o json | jq -r '.[0].id')
wait_state "$good" done
[[ $(h_sql "SELECT string_agg(id::text, ',') FROM sessions") == 3 ]] ||
    h_fail "the statement did not delete exactly the old sessions: $(h_sql "SELECT * FROM sessions")"
h_capture out status as bob run drop-database --cluster
[[ $status == 1 && $out == *"no active cluster agent (role: cluster) declares action drop-database"* ]] ||
    h_fail "an undeclared action: $status $out"
h_pass "the catalog's statement deletes the old sessions; a value outside its enum is refused on the node; no SQL can be sent"

# ---- a Kubernetes action: scale, as kubectl scale does it ------------------------------------
[[ $(kube_state | jq '.deployments["reconciliation/backend"].spec.replicas') == 2 ]] ||
    h_fail "the API server's seed changed: $(kube_state | jq -c '.deployments | keys')"
scale=$(as bob run scale-deployment --cluster --arg namespace=reconciliation --arg deployment=backend \
    --arg replicas=3 -o json | jq -r '.[0].id')
wait_state "$scale" done
[[ $(kube_state | jq '.deployments["reconciliation/backend"].spec.replicas') == 3 ]] ||
    h_fail "the deployment was not scaled: $(kube_state | jq -c '.deployments["reconciliation/backend"].spec')"
scaled_stored() {
    [[ $(h_ctl command show "$scale" -o json |
        jq '[.evidence[] | select(.kind == "command_output" and .status == "stored")] | length') == 1 ]]
}
h_wait "the scale output in the vault" 30 scaled_stored
out_id=$(h_ctl command show "$scale" -o json | jq -r '.evidence[] | select(.kind == "command_output") | .id')
h_ctl evidence get "$out_id" --out "$H_DIR/scale.out" >/dev/null
grep -q '^before: {"replicas":2}' "$H_DIR/scale.out" && grep -q '^after: {"replicas":3}' "$H_DIR/scale.out" &&
    grep -q '^restore: replicas=2' "$H_DIR/scale.out" ||
    h_fail "the scale output does not hold before and after: $(cat "$H_DIR/scale.out")"
! runuser -u postgres -- cat "$KUBE/token" >/dev/null 2>&1 || h_fail "the agent's user can read the token"
h_pass "vigilctl run --cluster scales a deployment through the API server with a token only root can read; the vault holds before and after"

# ---- investigation: the cluster's entries from the cluster agent -----------------------------
h_start_agent web-1 "collectors: {host: {interval: 1s}, netstat: {interval: 0s}, processes: {interval: 0s}}"
web_incident() { h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "web-check")][0].id // empty'; }
has_web_incident() { [[ -n $(web_incident) ]]; }
h_wait "the web-check incident on web-1" 30 has_web_incident
wid=$(web_incident)
settled() {
    h_ctl incident show "$wid" -o json |
        jq -e '.investigation | length == 2 and all(.[]; .status == "stored")' >/dev/null
}
h_wait "the investigation of incident $wid" 60 settled
inv=$(h_ctl incident show "$wid" -o json | jq -c '[.investigation[] | {kind, node}] | sort_by(.kind)')
[[ $inv == '[{"kind":"host","node":"web-1"},{"kind":"redis","node":"cluster"}]' ]] ||
    h_fail "investigation: $inv"
h_pass "an investigate entry with on: cluster comes from the cluster agent, the others from the incident's node"

# ---- kubernetes actions belong to the cluster agent ------------------------------------------
mkdir -p "$H_DIR/node"
cat >"$H_DIR/node/agent.yaml" <<EOF
node: web-1
state_dir: "$H_DIR/node/state"
coordinator: {public_key: "$H_COORD_PUB"}
signers_file: ""
actions:
  - name: restart-backend
    kind: kubernetes
    op: restart
    params:
      - {name: namespace, enum: [reconciliation]}
      - {name: deployment, enum: [backend]}
EOF
h_capture out status "$VIGIL_BUILD/vigil-agent" -n -c "$H_DIR/node/agent.yaml"
[[ $status != 0 && $out == *"kubernetes actions run only on the cluster agent (role: cluster)"* ]] ||
    h_fail "a node agent accepted a kubernetes action: $status $out"
h_pass "a node agent refuses kubernetes actions: only the cluster agent holds cluster rights"
