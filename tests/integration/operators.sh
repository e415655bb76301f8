#!/usr/bin/env bash
# Operators as data, through vigilctl: an admin adds operators with their CURVE and signing keys
# and they can work at once, each within its role; a name or a key is never registered twice; a
# revoked operator's next command is refused; rotating one's keys makes the old key useless at
# once and the new one work, across a restart too; the last admin cannot be revoked; every change
# is in the audit log. Before this, a second operator could only be added in SQL, with a restart.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

sign_public() { sed -n 's/^signing-public-key: *"\(.*\)"/\1/p' "$1"; }
# new_operator WHO: a key pair and signing key (vigilctl keygen) and a vigilctl configuration.
new_operator() {
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/$1.key" >"$H_DIR/$1.keygen" || h_fail "keygen for $1 failed"
    h_write_ctl_config "$H_DIR/$1.yaml" "$H_DIR/$1.key"
}
# as WHO ARGS...: vigilctl as that operator.
as() {
    local who=$1
    shift
    VIGIL_CONFIG="$H_DIR/$who.yaml" "$VIGIL_BUILD/vigilctl" "$@"
}
add() { # add NAME ROLE KEYFILE (as the configured admin)
    h_ctl operators add "$1" --role "$2" --public-key "$(h_key_public "$3")" \
        --signing-key "$(sign_public "$3.sign")"
}

# ---- keygen makes both keys ----------------------------------------------------------------
new_operator bob
[[ -f $H_DIR/bob.key.sign && $(stat -c %a "$H_DIR/bob.key.sign") == 600 ]] ||
    h_fail "keygen did not write bob.key.sign with mode 0600"
grep -Fqx "public-key:  $(h_key_public "$H_DIR/bob.key")  ($H_DIR/bob.key)" "$H_DIR/bob.keygen" &&
    grep -Fqx "signing-key: $(sign_public "$H_DIR/bob.key.sign")  ($H_DIR/bob.key.sign)" "$H_DIR/bob.keygen" ||
    h_fail "keygen did not print both public keys: $(cat "$H_DIR/bob.keygen")"
h_capture out status "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/bob.key"
[[ $status == 1 && $out == *"bob.key already exists"* ]] || h_fail "keygen overwrote a key: $status $out"
h_pass "keygen writes a CURVE key pair and a signing key (FILE.sign) and prints both public keys"

# ---- an admin adds a responder; it works at once, within its role ----------------------------
out=$(add bob responder "$H_DIR/bob.key") || h_fail "operators add bob failed"
[[ $out == "operator bob added (responder)" ]] || h_fail "unexpected answer to add: $out"
as bob operators -o json | jq -e --arg k "$(h_key_public "$H_DIR/bob.key")" \
    --arg s "$(sign_public "$H_DIR/bob.key.sign")" \
    'any(.name == "bob" and .role == "responder" and .public_key == $k and .signing_key == $s and
         .revoked == false and (.id | startswith("op-")) and (.created_at | test("Z$")))' >/dev/null ||
    h_fail "bob cannot list himself with his keys: $(as bob operators -o json 2>&1)"

pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
read -r incident outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" application-down:web \
    application-down 2 critical "Application down" web-1) || h_fail "incident-inject failed"
[[ $outcome == opened ]] || h_fail "no incident opened: $incident $outcome"
as bob ack "$incident" --note "bob is on it" >/dev/null || h_fail "a responder could not acknowledge"

H_NO_TOKEN=1 h_start_agent pending-node
h_wait "the agent without a token to wait as pending" 30 \
    bash -c "VIGIL_CONFIG='$H_DIR/vigilctl.yaml' '$VIGIL_BUILD/vigilctl' agents -o json | jq -e 'any(.state == \"pending\")' >/dev/null"
pending=$(h_ctl agents -o json | jq -r '.[] | select(.state == "pending") | .id')
h_capture out status as bob agents approve "$pending"
[[ $status == 1 && $out == *"permission denied: approving agents needs the admin role (you are responder)"* ]] ||
    h_fail "a responder's approve: $status $out"
h_ctl agents -o json | jq -e --arg id "$pending" 'any(.id == $id and .state == "pending")' >/dev/null ||
    h_fail "the agent did not stay pending"
h_pass "an added responder works at once: it acknowledges an incident but may not approve an agent"

# ---- a viewer may not add; names and keys are never registered twice -------------------------
new_operator vic
add vic viewer "$H_DIR/vic.key" >/dev/null || h_fail "operators add vic failed"
new_operator eve
h_capture out status as vic operators add eve --role admin --public-key "$(h_key_public "$H_DIR/eve.key")" \
    --signing-key "$(sign_public "$H_DIR/eve.key.sign")"
[[ $status == 1 && $out == *"permission denied: adding operators needs the admin role (you are viewer)"* ]] ||
    h_fail "a viewer's add: $status $out"
h_capture out status add bob viewer "$H_DIR/eve.key"
[[ $status == 1 && $out == "vigilctl: cannot add operator bob: an active operator is already named bob" ]] ||
    h_fail "a duplicate name: $status $out"
h_capture out status h_ctl operators add bobby --role viewer --public-key "$(h_key_public "$H_DIR/bob.key")" \
    --signing-key "$(sign_public "$H_DIR/eve.key.sign")"
[[ $status == 1 && $out == *"that public key is operator bob's"* ]] || h_fail "a duplicate public key: $status $out"
h_capture out status h_ctl operators add bobby --role viewer --public-key "$(h_key_public "$H_DIR/eve.key")" \
    --signing-key "$(sign_public "$H_DIR/bob.key.sign")"
[[ $status == 1 && $out == *"that signing key is operator bob's"* ]] || h_fail "a duplicate signing key: $status $out"
h_capture out status h_ctl operators add "bob smith" --role viewer --public-key "$(h_key_public "$H_DIR/eve.key")" \
    --signing-key "$(sign_public "$H_DIR/eve.key.sign")"
[[ $status == 2 ]] || h_fail "a name with a space: $status $out"
h_capture out status h_ctl operators add eve --role root --public-key "$(h_key_public "$H_DIR/eve.key")" \
    --signing-key "$(sign_public "$H_DIR/eve.key.sign")"
[[ $status == 2 && $out == *"--role viewer, responder or admin"* ]] || h_fail "an unknown role: $status $out"
[[ $(h_ctl operators -o json | jq 'length') == 3 ]] || h_fail "a refused add left an operator: $(h_ctl operators)"
h_pass "a viewer may not add operators; a taken name, public key or signing key is refused"

# ---- revoke: the operator's next command is refused ------------------------------------------
as vic operators >/dev/null || h_fail "vic could not list before the revocation"
out=$(h_ctl operators revoke vic) || h_fail "operators revoke vic failed"
[[ $out == "operator vic revoked: the coordinator refuses its key from now on" ]] || h_fail "revoke said: $out"
h_capture out status as vic operators
[[ $status == 1 && $out == *"the coordinator refused this operator key (not registered or revoked)"* ]] ||
    h_fail "a revoked operator's command: $status $out"
h_capture out status h_ctl operators revoke vic
[[ $status == 1 && $out == *"no active operator is named vic"* ]] || h_fail "revoking twice: $status $out"
h_capture out status add vic2 viewer "$H_DIR/vic.key"
[[ $status == 1 && $out == *"that public key was operator vic's, now revoked"* ]] ||
    h_fail "a revoked key registered again: $status $out"
h_ctl operators --all -o json | jq -e 'any(.name == "vic" and .revoked)' >/dev/null ||
    h_fail "operators --all does not list the revoked vic"
h_ctl operators -o json | jq -e 'all(.name != "vic")' >/dev/null || h_fail "vic is still listed as active"
h_pass "a revoked operator's next command is refused; its key cannot come back; --all lists it"

# ---- rotate: the old key is refused at once, the new one works -------------------------------
old_bob=$(h_key_public "$H_DIR/bob.key")
out=$(as bob operators rotate) || h_fail "bob's rotate failed: $out"
[[ -f $H_DIR/bob.yaml.old && -f $H_DIR/bob.yaml.sign && ! -e $H_DIR/bob.yaml.new && ! -e $H_DIR/bob.yaml.sign.new ]] ||
    h_fail "rotate left these files: $(ls "$H_DIR")"
[[ $out == *"$H_DIR/bob.yaml  new CURVE key pair (previous: $H_DIR/bob.yaml.old)"* &&
    $out == *"$H_DIR/bob.yaml.sign  new signing key (previous: none)"* ]] ||
    h_fail "rotate did not say which files changed: $out"
new_bob=$(sed -n 's/^public_key: *"\(.*\)"/\1/p' "$H_DIR/bob.yaml")
[[ -n $new_bob && $new_bob != "$old_bob" ]] || h_fail "bob.yaml has no new public key"
grep -q "^coordinator: " "$H_DIR/bob.yaml" || h_fail "rotate lost the rest of bob.yaml"
[[ $(stat -c %a "$H_DIR/bob.yaml") == 600 ]] || h_fail "the new bob.yaml is not mode 0600"
h_capture out status env VIGIL_CONFIG="$H_DIR/bob.yaml.old" "$VIGIL_BUILD/vigilctl" operators
[[ $status == 1 && $out == *"refused this operator key"* ]] || h_fail "bob's old key still works: $status $out"
as bob operators -o json | jq -e --arg k "$new_bob" --arg s "$(sign_public "$H_DIR/bob.yaml.sign")" \
    'any(.name == "bob" and .role == "responder" and .public_key == $k and .signing_key == $s)' >/dev/null ||
    h_fail "bob's new keys are not his: $(as bob operators -o json 2>&1)"
h_ctl operators --all -o json | jq -e --arg k "$old_bob" 'any(.name == "bob" and .public_key == $k and .revoked)' \
    >/dev/null || h_fail "bob's old key is not listed as revoked"

# With signing_key_file configured: that file is replaced, the previous one kept as .old.
new_operator ann
add ann admin "$H_DIR/ann.key" >/dev/null || h_fail "operators add ann failed"
echo "signing_key_file: \"ann.key.sign\"" >>"$H_DIR/ann.yaml"
old_sign=$(sign_public "$H_DIR/ann.key.sign")
as ann operators rotate >/dev/null || h_fail "ann's rotate failed"
[[ $(sign_public "$H_DIR/ann.key.sign.old") == "$old_sign" && $(sign_public "$H_DIR/ann.key.sign") != "$old_sign" ]] ||
    h_fail "ann's signing key file was not rotated with the old one kept"
as ann operators -o json | jq -e --arg s "$(sign_public "$H_DIR/ann.key.sign")" \
    'any(.name == "ann" and .signing_key == $s)' >/dev/null || h_fail "ann's new signing key is not registered"
h_pass "rotate: the old key is refused at once, the new keys work and are registered; the files are swapped, the old kept"

# ---- the last admin stays --------------------------------------------------------------------
h_ctl operators revoke admin >/dev/null || h_fail "admin could not revoke itself while ann is an admin"
h_capture out status h_ctl operators
[[ $status == 1 && $out == *"refused this operator key"* ]] || h_fail "admin's revoked key still works: $status $out"
h_capture out status as ann operators revoke ann
[[ $status == 1 && $out == *"ann is the last active admin"* ]] || h_fail "the last admin revoked herself: $status $out"
as ann operators -o json | jq -e 'any(.name == "ann" and .role == "admin")' >/dev/null ||
    h_fail "ann is no longer an admin"
h_pass "an admin may revoke itself while another admin remains; the last active admin cannot be revoked"

# ---- a restart changes nothing ---------------------------------------------------------------
h_stop_coordinator
h_start_coordinator # its configuration still names the revoked admin key
as bob operators >/dev/null || h_fail "bob's rotated key does not work after a restart"
as ann operators >/dev/null || h_fail "ann's key does not work after a restart"
for cfg in vigilctl.yaml bob.yaml.old vic.yaml ann.yaml.old; do
    h_capture out status env VIGIL_CONFIG="$H_DIR/$cfg" "$VIGIL_BUILD/vigilctl" operators
    [[ $status == 1 && $out == *"refused this operator key"* ]] || h_fail "$cfg works again after a restart: $status $out"
done
grep -q "admin key (admin.public_key) is revoked and stays revoked" "$H_DIR/coordinator.log" ||
    h_fail "the coordinator did not say that its configured admin key stays revoked"
h_pass "after a restart, revoked and rotated keys stay refused and the new ones work"

# ---- every change is audited -----------------------------------------------------------------
audit=$(h_sql "SELECT action || ' ' || subject || ' ' || actor FROM audit_log
               WHERE action LIKE 'operator.%' ORDER BY id")
expected="operator.add admin coordinator
operator.add bob operator:admin
operator.add vic operator:admin
operator.revoke vic operator:admin
operator.rotate bob operator:bob
operator.add ann operator:admin
operator.rotate ann operator:ann
operator.revoke admin operator:admin"
[[ $audit == "$expected" ]] || h_fail "unexpected audit rows:
$audit"
h_pass "every add, revoke and rotate has its audit row, naming who did it"
