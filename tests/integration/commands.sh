#!/usr/bin/env bash
# Remediation commands through vigilctl and a real coordinator, over CURVE, to an agent that
# declares a catalog and checks every capsule as the executor will (tests/tools/
# command-fake-agent.c: vg_capsule_verify against the coordinator's signing key from
# `vigil-coordinator --print-signing-key` and the operators' keys, then the mode's policy).
# Running an `approve` action is the requester's approval; a `destructive` one waits for an
# admin; an `auto` one goes at once; a viewer may not run; an action the node does not declare
# is refused with what it declares; every step the agent reports shows in `vigilctl commands`.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator
FAKE=$VIGIL_BUILD/command-fake-agent

sign_public() { sed -n 's/^signing-public-key: *"\(.*\)"/\1/p' "$1"; }
new_operator() { # new_operator NAME ROLE: keys, an operator, and a vigilctl configuration
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/$1.key" >/dev/null || h_fail "keygen for $1 failed"
    h_write_ctl_config "$H_DIR/$1.yaml" "$H_DIR/$1.key"
    (umask 077 && echo "signing_key_file: \"$H_DIR/$1.key.sign\"" >>"$H_DIR/$1.yaml")
    h_ctl operators add "$1" --role "$2" --public-key "$(h_key_public "$H_DIR/$1.key")" \
        --signing-key "$(sign_public "$H_DIR/$1.key.sign")" >/dev/null || h_fail "operators add $1"
}
as() {
    local who=$1
    shift
    VIGIL_CONFIG="$H_DIR/$who.yaml" "$VIGIL_BUILD/vigilctl" "$@"
}
state_of() { h_ctl commands -o json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }

# ---- the coordinator's signing key ---------------------------------------------------------
coord_sign=$("$VIGIL_BUILD/vigil-coordinator" --print-signing-key -c "$H_DIR/coordinator.yaml") ||
    h_fail "--print-signing-key failed"
[[ ${#coord_sign} == 44 ]] || h_fail "--print-signing-key printed \"$coord_sign\""
grep -q "signing key $H_DIR/coord/coordinator.sign created public=$coord_sign" "$H_DIR/coordinator.log" ||
    h_fail "the start-up log does not name the signing key: $(grep 'signing key' "$H_DIR/coordinator.log")"
[[ $(stat -c %a "$H_DIR/coord/coordinator.sign") == 600 ]] || h_fail "coordinator.sign is not mode 0600"
h_pass "the coordinator makes its signing key at start, logs it and prints it (--print-signing-key)"

new_operator bob responder
new_operator carol admin
new_operator vic viewer
"$FAKE" --endpoint "tcp://127.0.0.1:$H_PORT_AGENTS" --server-key "$H_COORD_PUB" \
    --secret-file "$H_DIR/enrollment.secret" --node web-1 --coordinator-key "$coord_sign" \
    --signer "bob:responder:$(sign_public "$H_DIR/bob.key.sign")" \
    --signer "carol:admin:$(sign_public "$H_DIR/carol.key.sign")" \
    --action restart-app:approve:unit --action isolate-node:destructive --action reopen-logs:auto \
    >"$H_DIR/fake.out" 2>"$H_DIR/fake.err" &
H_FAKE_PID=$!
trap 'kill $H_FAKE_PID 2>/dev/null; h_cleanup' EXIT
h_wait "the fake agent to enroll" 30 grep -q '^ready agent=' "$H_DIR/fake.out"
agent_id=$(sed -n 's/^ready agent=//p' "$H_DIR/fake.out")
h_wait "the declared catalog" 30 grep -q "agent=$agent_id node=web-1 declares 3 actions" "$H_DIR/coordinator.log"
[[ $(h_sql "SELECT actions->1->>'name' || ' ' || (actions->1->>'mode') FROM agents WHERE id = '$agent_id'") == "isolate-node destructive" ]] ||
    h_fail "the catalog is not in the store: $(h_sql "SELECT actions FROM agents WHERE id = '$agent_id'")"

# ---- refusals before anything is stored ----------------------------------------------------
h_capture out status as vic run restart-app --node web-1 --arg unit=app.service
[[ $status == 1 && $out == *"running commands needs the responder role (you are viewer)"* ]] ||
    h_fail "a viewer's run: $status $out"
h_capture out status as bob run format-disk --node web-1
[[ $status == 1 && $out == *"no active agent on node web-1 declares action format-disk; it declares: restart-app, isolate-node, reopen-logs"* ]] ||
    h_fail "an undeclared action: $status $out"
h_capture out status as bob run restart-app --node web-2 --arg unit=app.service
[[ $status == 1 && $out == *"no active agent on node web-2"* ]] || h_fail "an unknown node: $status $out"
h_capture out status as bob run restart-app --node web-1
[[ $status == 1 && $out == *"needs --arg unit=VALUE"* ]] || h_fail "a missing argument: $status $out"
[[ $(h_ctl commands -o json | jq length) == 0 ]] || h_fail "a refused run left a request"
h_pass "a viewer may not run; an action the node does not declare, or without its argument, is refused"

# ---- approve mode: running it is the requester's approval ----------------------------------
as bob run restart-app --node web-1 --arg unit=app.service -o json >"$H_DIR/run1.json" ||
    h_fail "bob's run failed: $(cat "$H_DIR/run1.json")"
id1=$(jq -r '.[0].id' "$H_DIR/run1.json")
jq -e '.[0].state == "issued" and .[0].mode == "approve" and .[0].approvers == ["bob"]' \
    "$H_DIR/run1.json" >/dev/null || h_fail "bob's run was not issued on his approval: $(cat "$H_DIR/run1.json")"
h_wait "the agent to run $id1" 20 grep -q "capsule request=$id1 ok" "$H_DIR/fake.out"
h_wait "$id1 done" 20 bash -c "[[ \$(VIGIL_CONFIG='$H_DIR/vigilctl.yaml' '$VIGIL_BUILD/vigilctl' commands -o json | jq -r '.[] | select(.id == \"$id1\") | .state') == done ]]"
h_ctl command show "$id1" -o json >"$H_DIR/show1.json"
jq -e '[.steps[].step] == ["accepted", "started", "done"] and .exit_status == 0 and
       (.output_sha256 | length) == 64 and .requested_by == "bob" and .args.unit == "app.service"' \
    "$H_DIR/show1.json" >/dev/null || h_fail "command show: $(cat "$H_DIR/show1.json")"
h_pass "an approve action runs on its requester's signature: verified on the node, accepted, started, done"

# ---- auto: issued at once --------------------------------------------------------------------
id2=$(as bob run reopen-logs --node web-1 -o json | jq -r '.[0].id')
h_wait "the auto action to run" 20 grep -q "capsule request=$id2 ok approvals=0" "$H_DIR/fake.out"
h_pass "an auto action goes out on the coordinator's signature alone"

# ---- destructive: two operators, one an admin ----------------------------------------------
as bob run isolate-node --node web-1 -o json >"$H_DIR/run3.json" 2>"$H_DIR/run3.err"
id3=$(jq -r '.[0].id' "$H_DIR/run3.json")
jq -e '.[0].state == "pending" and (.[0].needs | test("two different operators"))' "$H_DIR/run3.json" >/dev/null ||
    h_fail "a destructive run did not wait: $(cat "$H_DIR/run3.json")"
sleep 1
! grep -q "request=$id3" "$H_DIR/fake.out" || h_fail "a destructive capsule went out on one approval"
h_capture out status as vic approve "$id3"
[[ $status == 1 && $out == *"approving commands needs the responder role"* ]] || h_fail "a viewer's approve: $status $out"
as carol approve "$id3" >"$H_DIR/approve3.out" || h_fail "carol's approve failed: $(cat "$H_DIR/approve3.out")"
grep -q "^action        isolate-node (destructive)" "$H_DIR/approve3.out" &&
    grep -q "^requested by  bob" "$H_DIR/approve3.out" && grep -q "^approved; $id3 is issued" "$H_DIR/approve3.out" ||
    h_fail "approve did not show the request and its outcome: $(cat "$H_DIR/approve3.out")"
h_wait "the destructive action to run" 20 grep -q "capsule request=$id3 ok approvals=2" "$H_DIR/fake.out"
h_capture out status as carol approve "$id3"
[[ $status == 1 && $out == *"takes no more approvals"* ]] || h_fail "a second approve of an issued command: $status $out"
h_pass "a destructive action waits for a second operator, an admin, and runs once approved"

# ---- cancel ----------------------------------------------------------------------------------
id4=$(as bob run isolate-node --node web-1 -o json 2>/dev/null | jq -r '.[0].id')
as bob cancel "$id4" >/dev/null || h_fail "cancel failed"
[[ $(state_of "$id4") == cancelled ]] || h_fail "$id4 is $(state_of "$id4"), not cancelled"
h_capture out status as carol approve "$id4"
[[ $status == 1 && $out == *"is cancelled"* ]] || h_fail "approving a cancelled command: $status $out"
h_capture out status as bob cancel "$id1"
[[ $status == 1 && $out == *"only a command waiting for approvals can be cancelled"* ]] ||
    h_fail "cancelling a done command: $status $out"
h_pass "a pending command can be cancelled and then takes no approval; a finished one cannot"

# ---- the record ------------------------------------------------------------------------------
h_ctl commands >"$H_DIR/list.txt"
grep -q "^ID .*ACTION .*NODE .*STATE .*MODE .*EXIT .*DURATION .*OUTPUT-SHA256 .*REQUESTER .*APPROVERS" "$H_DIR/list.txt" &&
    grep -q "$id1 .*restart-app .*web-1 .*done .*approve .*0 .*7 ms .*bob .*bob" "$H_DIR/list.txt" ||
    h_fail "vigilctl commands: $(cat "$H_DIR/list.txt")"
[[ $(h_sql "SELECT count(*) FROM audit_log WHERE action LIKE 'command.%'") -ge 9 ]] ||
    h_fail "audit rows: $(h_sql "SELECT action, subject FROM audit_log WHERE action LIKE 'command.%'")"
h_capture out status h_sql "UPDATE command_reports SET exit_status = 1"
[[ $out == *"append-only"* ]] || h_fail "command reports could be changed: $status $out"
h_pass "vigilctl commands lists outcome, requester and approvers; every change is audited; reports are append-only"
