#!/usr/bin/env bash
# The agent's side of a command, with the real coordinator: the agent declares its catalog at
# enrollment, its network side passes the capsule to the executor unread, and the executor's
# reports go through the spool like evidence, so they reach the coordinator exactly once even
# when the coordinator dies in the middle (SIGKILLed while the action runs: the reports wait in
# the spool and are sent again to the restarted coordinator, which stores them once). What the
# command leaves — its output and the evidence kinds its catalog entry lists — reaches the vault.
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root (the catalog and signer file are root's)"; exit 77; }

h_setup
public_of() { sed -n 's/^signing-public-key: "\(.*\)"$/\1/p' "$1"; }
# The admin operator signs its own requests (vigilctl run): the coordinator must know its key.
h_write_coordinator_config ""
sed -i "s|^admin:|admin:\n  signing_public_key: \"$(public_of "$H_DIR/admin.key.sign")\"|" \
    "$H_DIR/coordinator.yaml"
start_coordinator() {
    "$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" >>"$H_DIR/coordinator.log" 2>&1 &
    H_COORD_PID=$!
    h_wait "coordinator healthy" 90 h_coordinator_healthy
}
start_coordinator
h_wait "the coordinator's signing key" 10 test -s "$H_DIR/coord/coordinator.sign"

# The node's root of trust: the coordinator's key and the admin operator's.
cat >"$H_DIR/signers.yaml" <<EOF
signers:
  - {name: coordinator, role: coordinator, public_key: "$(public_of "$H_DIR/coord/coordinator.sign")"}
  - {name: admin, role: admin, public_key: "$(public_of "$H_DIR/admin.key.sign")"}
EOF
OUT=$H_DIR/out
mkdir -p "$H_DIR/bin" "$OUT"
cat >"$H_DIR/bin/canary.sh" <<EOF
#!/bin/sh
sleep "\$2"
echo "hello \$1"
: >"$OUT/ran-\$1"
EOF
chmod 755 "$H_DIR/bin/canary.sh"
chmod 644 "$H_DIR/signers.yaml"
h_start_agent node-x "signers_file: \"$H_DIR/signers.yaml\"
actions:
  - name: canary
    kind: exec
    argv: [$H_DIR/bin/canary.sh, \"{name}\", \"{delay}\"]
    root: true
    auto: true
    evidence: [host]
    params:
      - {name: name, identifier: {pattern: \"[a-z]+\"}}
      - {name: delay, int: {min: 0, max: 10}}
  - name: canary-approved
    kind: exec
    argv: [$H_DIR/bin/canary.sh, \"{name}\", \"{delay}\"]
    root: true
    params:
      - {name: name, identifier: {pattern: \"[a-z]+\"}}
      - {name: delay, int: {min: 0, max: 10}}"
log=$H_DIR/agents/node-x/agent.log

h_wait "node-x declares its catalog at enrollment" 30 \
    grep -q "node=node-x declares 2 actions" "$H_DIR/coordinator.log"
h_pass "the agent declares its 2 actions in Enroll"

# command_state ID: the coordinator's state of a command.
command_state() { h_ctl command show "$1" -o json | jq -r '.state'; }
done_steps() { h_ctl command show "$1" -o json | jq '[.steps[] | select(.step == "done")] | length'; }
run_id() { h_ctl run "$@" -o json | jq -r 'if type == "array" then .[0].id else .id end'; }

id=$(run_id canary --node node-x --arg name=hello --arg delay=0)
[[ -n $id ]] || h_fail "vigilctl run gave no command id"
is_done() { [[ $(command_state "$id") == done ]]; }
h_wait "command $id done" 20 is_done
doc=$(h_ctl command show "$id" -o json)
[[ $(jq -r '.exit_status' <<<"$doc") == 0 ]] || h_fail "exit status: $doc"
[[ $(jq -r '.output_sha256' <<<"$doc") == $(echo "hello hello" | sha256sum | cut -d' ' -f1) ]] ||
    h_fail "output hash: $doc"
[[ $(jq -r '[.steps[].step] | join(" ")' <<<"$doc") == "accepted started done" ]] ||
    h_fail "steps: $(jq -c '.steps' <<<"$doc")"
[[ -e $OUT/ran-hello ]] || h_fail "the canary did not run"
grep -q "command report request=$id" "$log" || h_fail "the agent did not spool the reports"
h_pass "vigilctl run -> capsule -> executor -> accepted, started, done (exit 0, output SHA-256) stored"

# The evidence it left: its output (the same bytes the done report hashed) and the host snapshot
# its catalog entry lists, each a verified vault artifact linked to the command.
evidence_stored() {
    [[ $(h_ctl command show "$id" -o json |
        jq '[.evidence[] | select(.status == "stored")] | length') == 2 ]]
}
h_wait "the output and the host snapshot of $id in the vault" 30 evidence_stored
doc=$(h_ctl command show "$id" -o json)
out_sha=$(jq -r '.evidence[] | select(.kind == "command_output") | .sha256' <<<"$doc")
[[ $out_sha == $(jq -r '.output_sha256' <<<"$doc") ]] ||
    h_fail "the stored output does not hash to the report's output_sha256: $doc"
[[ $(jq -r '.evidence[] | select(.kind == "command_output") | .args.request' <<<"$doc") == "$id" ]] ||
    h_fail "the output artifact does not name its command: $doc"
out_id=$(jq -r '.evidence[] | select(.kind == "command_output") | .id' <<<"$doc")
h_ctl evidence get "$out_id" --out "$H_DIR/output.bin" >/dev/null
[[ $(cat "$H_DIR/output.bin") == "hello hello" ]] || h_fail "output artifact: $(cat "$H_DIR/output.bin")"
[[ $(jq -r '[.evidence[].kind] | sort | join(" ")' <<<"$doc") == "command_output host" ]] ||
    h_fail "evidence kinds: $(jq -c '[.evidence[].kind]' <<<"$doc")"
shown=$(h_ctl command show "$id")
grep -q "evidence after the command" <<<"$shown" || h_fail "command show does not list the evidence: $shown"
h_ctl evidence verify >/dev/null || h_fail "the vault does not verify after the command's evidence"
h_pass "the command's output and its catalog's evidence kind are verified vault artifacts"

# The coordinator dies while the action runs: the reports wait in the spool.
id=$(run_id canary --node node-x --arg name=later --arg delay=2)
[[ -n $id ]] || h_fail "vigilctl run gave no command id"
h_kill_coordinator
h_wait "the action ran while the coordinator was down" 15 test -e "$OUT/ran-later"
h_wait "the agent spooled the done report" 15 grep -q "command report request=$id step=done" "$log"
start_coordinator
h_wait "command $id done after the coordinator came back" 60 is_done
[[ $(done_steps "$id") == 1 ]] || h_fail "done stored $(done_steps "$id") times"
h_pass "reports survive a dead coordinator in the spool and are stored exactly once"

# Samples measured while a command runs carry its id: the agent's own signals during a 3 s run.
id=$(run_id canary --node node-x --arg name=tagged --arg delay=3)
[[ -n $id ]] || h_fail "vigilctl run gave no command id"
h_wait "command $id done" 20 is_done
tagged() { [[ $(h_sql "SELECT count(*) FROM signals WHERE command_id = '$id'") -gt 0 ]]; }
h_wait "samples tagged with $id" 30 tagged
agent=$(h_agent_id node-x)
untagged_after() {
    [[ $(h_sql "SELECT count(*) FROM signals WHERE command_id IS NULL AND agent_id = '$agent'
        AND ts > (SELECT max(ts) FROM signals WHERE command_id = '$id')") -gt 0 ]]
}
h_wait "untagged samples again once the command settled" 30 untagged_after
h_pass "samples measured while a command runs (and just after) carry its id; later ones do not"
