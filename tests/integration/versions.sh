#!/usr/bin/env bash
# A rolling upgrade mixes protocol versions: an agent one version behind the coordinator, and
# one version ahead of it (the coordinator upgraded last), both enroll and get their signals
# stored; an agent two versions away is refused with a reason that says which versions the
# coordinator accepts, logged and counted. Agents are vigil-sim stamping --protocol-version.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

current=$("$VIGIL_BUILD/vigilctl" --version | sed -n 's/.*(protocol \([0-9]*\)).*/\1/p')
[[ -n $current ]] || h_fail "vigilctl --version does not print the protocol version"
((current >= 2)) || h_fail "protocol version $current: one version behind it does not exist"

sim() { # one simulated agent, bounded in time (a hang fails the test instead of stalling it)
    timeout 60 "$VIGIL_BUILD/vigil-sim" ingest --agents 1 --seconds 1 --signals-per-message 4 \
        --window 2 --secret-file "$H_DIR/enrollment.secret" \
        --endpoint "tcp://127.0.0.1:$H_PORT_AGENTS" --server-key "$H_COORD_PUB" "$@"
}

mixed() { # VERSION WHAT: a simulated agent at VERSION enrolls and its signals are stored
    local v=$1 what=$2 node="v$1-0" out json
    out=$(sim --protocol-version "$v" --node-prefix "v$v" 2>&1) ||
        h_fail "$what (version $v against $current): $out"
    grep -Eq "messages=[1-9][0-9]* .*lost=0 version=$v\$" <<<"$out" ||
        h_fail "$what (version $v): not every message acknowledged: $out"
    json=$(h_ctl agents -o json)
    jq -e --arg n "$node" '[.[] | select(.node == $n and .state == "active")] | length == 1' \
        <<<"$json" >/dev/null || h_fail "$what: no active agent $node: $json"
    json=$(h_ctl signals --node "$node" -o json)
    jq -e '[.[] | select(.name == "host.cpu.busy_pct")] | length == 1' <<<"$json" >/dev/null ||
        h_fail "$what: no host.cpu.busy_pct stored for $node: $json"
    h_log "$what: $out"
}
mixed $((current - 1)) "an agent one version behind"
mixed $((current + 1)) "an agent one version ahead"
h_pass "agents one version behind and one ahead enroll and deliver"

refused() { # VERSION WORDS: refused with REFUSAL_VERSION, a reason, a log line and a metric
    local v=$1 words=$2 before after out rc
    before=$(h_metric 'vigil_messages_refused_total{reason="version"}')
    h_capture out rc sim --protocol-version "$v" --node-prefix "v$v"
    [[ $rc == 3 ]] || h_fail "version $v: expected a version refusal (exit 3), got exit $rc: $out"
    grep -q "refused code=4 reason=$words" <<<"$out" ||
        h_fail "version $v: the refusal does not say why: $out"
    after=$(h_metric 'vigil_messages_refused_total{reason="version"}')
    ((after > before)) || h_fail "version $v: refusal not counted ($before -> $after)"
    grep -q "refused reason=version seq=0: $words" "$H_DIR/coordinator.log" ||
        h_fail "version $v: refusal not logged with its reason"
    [[ $(h_ctl agents -o json | jq --arg n "v$v-0" '[.[] | select(.node == $n)] | length') == 0 ]] ||
        h_fail "version $v: the agent was registered anyway"
    h_log "version $v: $(grep -m1 "refused reason=version seq=0: $words" "$H_DIR/coordinator.log")"
}
window="this side speaks $current and accepts $((current - 1)) to $((current + 1))"
refused $((current + 2)) "protocol version too new, more than one ahead ($window)"
if ((current >= 3)); then
    refused $((current - 2)) "protocol version too old, more than one behind ($window)"
else
    refused 0 "no protocol version ($window)"
fi
h_pass "an agent two versions away is refused, with the accepted range logged and counted"
