#!/usr/bin/env bash
# A node name is bound to the key that enrolled it first, and identities compare full keys.
# With the shared enrollment secret a compromised node could once mint an active agent named
# like another node (its signals shown as that node's, its collect requests answered with forged
# artifacts), or rename itself into another node. Now:
#   - a second key claiming a known node is pending, token or not, shown beside the holder, and
#     cannot be approved while the holder stands;
#   - a known agent that re-enrolls under another name keeps its name until an operator approves;
#   - a key whose 64-bit agent id belongs to another key is refused at the handshake.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

agent_json() { h_ctl agents -o json | jq -c --arg id "$1" '.[] | select(.id == $id)'; }
field() { agent_json "$1" | jq -r ".$2"; }
is_state() { [[ $(field "$1" state) == "$2" ]]; }
id_of() { # the id an agent's log names (ag-...)
    sed -n 's/.*agent=\(ag-[0-9a-f]*\) node=.*key.*/\1/p' "$H_DIR/agents/$1/agent.log" | head -1
}
wait_id() { [[ -n $(id_of "$1") ]]; }

h_start_agent vm
h_wait "vm's id" 20 wait_id vm
vm=$(id_of vm)
h_wait "vm active" 30 is_state "$vm" active

# A second key, with a valid token, claims node "vm".
H_NODE=vm h_start_agent impostor
h_wait "the impostor's id" 20 wait_id impostor
imp=$(id_of impostor)
h_wait "the impostor pending" 30 is_state "$imp" pending
[[ $(field "$imp" node_held_by) == "$vm" ]] || h_fail "the claim does not name the holder: $(agent_json "$imp")"
h_ctl agents | grep -E "^$imp +vm +pending .*claims the node of $vm" >/dev/null ||
    h_fail "vigilctl agents does not show the claim: $(h_ctl agents)"
grep -q "claims node=vm held by agent=$vm" "$H_DIR/coordinator.log" || h_fail "the claim is not logged"
sleep 2
[[ $(h_sql "select count(*) from agent_messages where agent_id = '$imp'") == 0 ]] ||
    h_fail "the impostor's messages were stored as vm's"
h_capture out rc h_ctl agents approve "$imp"
[[ $rc != 0 ]] && grep -q "node vm is held by agent $vm" <<<"$out" ||
    h_fail "approving a claim on a held node: exit $rc: $out"
h_pass "a second key claiming a node waits, shown beside the holder, and cannot be approved over it"

# The operator decides the node was rebuilt: revoke the old key, approve the new one.
h_ctl agents revoke "$vm" >/dev/null
h_ctl agents approve "$imp" >/dev/null || h_fail "approve after revoking the holder failed"
h_wait "the new key active as vm" 30 is_state "$imp" active
h_stop_agent vm
h_pass "after the holder is revoked, the new key can be approved for the node"

# A known agent renames itself: it keeps its name until approved.
h_start_agent db-1
h_wait "db-1's id" 20 wait_id db-1
db=$(id_of db-1)
h_wait "db-1 active" 30 is_state "$db" active
h_stop_agent db-1
sed -i 's/^node: "db-1"$/node: "db-2"/' "$H_DIR/agents/db-1/agent.yaml"
"$VIGIL_BUILD/vigil-agent" -c "$H_DIR/agents/db-1/agent.yaml" >>"$H_DIR/agents/db-1/agent.log" 2>&1 &
H_AGENT_PIDS[db-1]=$!
asks() { [[ $(field "$db" requested_node) == db-2 ]]; }
h_wait "the rename request recorded" 30 asks
[[ $(field "$db" node) == db-1 && $(field "$db" state) == active ]] ||
    h_fail "a renamed agent changed its node before approval: $(agent_json "$db")"
h_ctl agents | grep -E "^$db +db-1 +active .*asks to be renamed db-2" >/dev/null ||
    h_fail "vigilctl agents does not show the rename: $(h_ctl agents)"
h_ctl agents approve "$db" >/dev/null || h_fail "approving the rename failed"
[[ $(field "$db" node) == db-2 && -z $(field "$db" requested_node) ]] ||
    h_fail "the approved rename did not apply: $(agent_json "$db")"
[[ $(h_sql "select node from agents where id = '$db'") == db-2 ]] || h_fail "the rename is not stored"
h_pass "a rename waits for an operator, then applies"

# Identity is the full key: a stored agent whose id is this key's id but whose key differs (a
# 64-bit collision) does not let this key in as that agent.
mkdir -p "$H_DIR/agents/twin/state"
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/agents/twin/state/agent.key" >/dev/null
twin_pub=$(h_key_public "$H_DIR/agents/twin/state/agent.key")
twin_id=ag-$(printf '%s' "$twin_pub" | sha256sum | cut -c1-16)
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/other.key" >/dev/null
other_pub=$(h_key_public "$H_DIR/other.key")
h_stop_coordinator
h_sql_offline() { # the coordinator is stopped: start its cluster alone for one statement
    local pgdata bindir
    pgdata=$(readlink -f "$H_DIR/coord/pgdata")
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    runuser -u postgres -- "$bindir/pg_ctl" -D "$pgdata" -w -o "-c listen_addresses='' -c unix_socket_directories='$H_DIR/coord/pgsock'" start >/dev/null
    h_sql "$1"
    runuser -u postgres -- "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
}
h_sql_offline "insert into agents (id, public_key, node, state) values ('$twin_id', '$other_pub', 'twin-node', 'active')"
h_start_coordinator
h_start_agent twin
refused() { grep -q "zap: refused agent=$twin_id .*reason=key_mismatch" "$H_DIR/coordinator.log"; }
h_wait "the colliding key refused at the handshake" 20 refused
[[ $(h_metric 'vigil_messages_refused_total{reason="key_mismatch"}') -ge 1 ]] || h_fail "key_mismatch not counted"
[[ $(h_sql "select count(*) from agent_messages where agent_id = '$twin_id'") == 0 ]] ||
    h_fail "messages from the colliding key were stored"
h_pass "a key is never taken for another key's agent, even with the same 64-bit id"
