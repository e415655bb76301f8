#!/usr/bin/env bash
# The fault suite (issue 19): the coordinator and its agents on separate "hosts" — network
# namespaces joined by veth pairs — and the faults a fleet meets, each checked from the
# database: every message an agent made is stored exactly once, or was dropped by its full
# spool and counted. Each scenario prints
#   faults: scenario=NAME sent=N stored=N lost=0 duplicated=0 [more figures]
# and the test fails when lost or duplicated is not 0 (lost = made, neither stored nor counted
# as dropped; duplicated = a message or a sample stored twice).
#
#   tests/faults/faults.sh [SCENARIO...]     all of them by default, in this order:
#     partition   an agent cut off for FAULTS_PARTITION_S (60 s) while it keeps measuring; the
#                 cut starts one way only (what the agent sends is held back by the relay it
#                 connects through, the coordinator's requests still arrive), and in that window
#                 evidence is collected from it and a command run on it, so its artifacts and
#                 command reports are made during the partition; then every packet on its link
#                 is dropped. After the heal everything arrives once, the evidence and the
#                 reports after the heal.
#     spool-full  the agent's spool directory is a small tmpfs (FAULTS_TMPFS, 512k; its
#                 spool.max_size is far larger) that fills while the agent is cut off as above
#                 and sends every 10 ms: the oldest signals are dropped and counted exactly
#                 (sent = stored + dropped, and the agent reports that count), the evidence
#                 and command reports made during the cut are never dropped.
#     lossy       5 % of the agent's packets dropped each way (nftables `numgen random`) and
#                 FAULTS_DELAY_MS (25 ms) added each way by a userspace relay (relay.py; the
#                 kernel has no netem): a watched process killed FAULTS_TRIALS times, kill ->
#                 proc.up 0 stored (detection) and the first kill -> incident opened; every
#                 message's delivery time (sent -> committed). Targets: detection p50 <= 300 ms
#                 and p99 <= 1 s (the design's), delivery p99 <= 2 s (the agent's ack timeout).
#     kill        the coordinator SIGKILLed FAULTS_KILLS times (3) while three agents burst.
#     storm       FAULTS_SIM_AGENTS (1,000) simulated agents (vigil-sim steady, resending what
#                 is not acknowledged), the coordinator restarted: every one of them is
#                 storing again within FAULTS_STORM_BOUND_S (60 s) of the restart, none is
#                 refused, and everything they made is stored once.
#   partition, spool-full and lossy run at the same time (one namespace each); kill and storm
#   after them, one at a time.
#
# FAULTS_SHORT=1 is the version `make test` runs (10 s partition, 200 simulated agents, one
# kill, 3 trials): about a minute on two cores. `make faults` runs the long one.
#
# Namespaces: vigil-faults-PID-coord holds the coordinator (listening on its veth addresses,
# 10.77.I.1) and the test itself (so h_ctl, h_metric and /healthz reach it on its loopback);
# each agent namespace has 10.77.I.2 on its end of a pair made inside the namespaces. Nothing is
# added to the host's interfaces, routes or ruleset. Everything is removed on exit, after a
# failure or a signal too (and namespaces left by a run that was SIGKILLed are removed by the
# next run). Skipped (77) when not root or namespaces, veth or nftables are not available.
set -euo pipefail
SELF=$(readlink -f "$0")
FAULTS_DIR=$(dirname "$SELF")
NS_PREFIX=vigil-faults
# One namespace per scenario's agents (link number = position): vigil-faults-PID-NAME.
AGENT_NAMESPACES="part spool lossy burst sim"

# ---- outside: make the coordinator's namespace, run the suite in it, remove everything ----
if [[ ${FAULTS_INNER:-0} != 1 ]]; then
    skip() { echo "faults: SKIP: $*" >&2; exit 77; }
    [[ $(id -u) == 0 ]] || skip "needs root (network namespaces, tmpfs)"
    command -v ip >/dev/null || skip "ip (iproute2) is not installed"
    [[ -x /usr/sbin/nft ]] || skip "/usr/sbin/nft is not installed"
    [[ -x ${VIGIL_PYTHON:-/usr/bin/python3} ]] || skip "python3 is not installed (the delay relay)"
    # Namespaces of runs that died without cleaning up (SIGKILL): their creator is gone.
    for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX-" 'index($1, p) == 1 { print $1 }'); do
        owner=${ns#"$NS_PREFIX"-}
        owner=${owner%%-*}
        kill -0 "$owner" 2>/dev/null && continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    tag=$NS_PREFIX-$$
    outer_cleanup() {
        local ns pid
        for ns in $(ip netns list 2>/dev/null | awk -v p="$tag-" 'index($1, p) == 1 { print $1 }'); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    }
    trap outer_cleanup EXIT
    trap 'exit 143' TERM INT HUP
    ip netns add "$tag-coord" 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
    ip -n "$tag-coord" link set lo up
    ip netns exec "$tag-coord" /usr/sbin/nft list ruleset >/dev/null 2>&1 ||
        skip "nft does not work in a network namespace here"
    # The agents' namespaces are made here, not in the suite: a namespace named inside `ip netns
    # exec` lives in that command's private mount namespace, out of this cleanup's sight. Each
    # has a veth pair to the coordinator's (made inside the namespaces, never on the host):
    # 10.77.I.1 on vfI there, 10.77.I.2 on eth0 here.
    i=0
    for name in $AGENT_NAMESPACES; do
        i=$((i + 1))
        ns=$tag-$name
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$tag-coord" link add "vf$i" type veth peer name eth0 netns "$ns" 2>/dev/null ||
            skip "cannot create veth pairs in a network namespace"
        ip -n "$tag-coord" addr add "10.77.$i.1/24" dev "vf$i"
        ip -n "$tag-coord" link set "vf$i" up
        ip -n "$ns" addr add "10.77.$i.2/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    status=0
    FAULTS_INNER=1 FAULTS_TAG=$tag ip netns exec "$tag-coord" bash "$SELF" "$@" || status=$?
    exit "$status"
fi

# ---- inside the coordinator's namespace ----
source "$FAULTS_DIR/../lib/harness.sh"
PY=${VIGIL_PYTHON:-/usr/bin/python3}
SHORT=${FAULTS_SHORT:-0}
if [[ $SHORT == 1 ]]; then
    PARTITION_S=${FAULTS_PARTITION_S:-10} SIM_AGENTS=${FAULTS_SIM_AGENTS:-200}
    KILLS=${FAULTS_KILLS:-1} TRIALS=${FAULTS_TRIALS:-3}
else
    PARTITION_S=${FAULTS_PARTITION_S:-60} SIM_AGENTS=${FAULTS_SIM_AGENTS:-1000}
    KILLS=${FAULTS_KILLS:-3} TRIALS=${FAULTS_TRIALS:-10}
fi
TMPFS_SIZE=${FAULTS_TMPFS:-512k}
DELAY_MS=${FAULTS_DELAY_MS:-25}
LOSS_PCT=5
STORM_BOUND_S=${FAULTS_STORM_BOUND_S:-60}
ALL_SCENARIOS=(partition spool-full lossy kill storm)
SCENARIOS=("$@")
((${#SCENARIOS[@]} > 0)) || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || { echo "faults: unknown scenario $s (${ALL_SCENARIOS[*]})" >&2; exit 64; }
done
wanted() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }

h_setup
RESULTS=$H_DIR/faults.out
: >"$RESULTS"
SPOOL_MOUNT=$H_DIR/agents/spool-1/state/spool # spool-full's tmpfs
faults_cleanup() {
    local status=$? ns pid
    if [[ -f $H_DIR/extra.pids ]]; then
        for pid in $(cat "$H_DIR/extra.pids"); do kill "$pid" 2>/dev/null || true; done
    fi
    # Agents started by a scenario that ran in a subshell are not in H_AGENT_PIDS: whatever runs
    # in an agent namespace is this test's, ended by its id (the namespaces themselves go with
    # the outer half).
    for ns in $AGENT_NAMESPACES; do
        for pid in $(ip netns pids "$FAULTS_TAG-$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 0.5
    for ns in $AGENT_NAMESPACES; do
        for pid in $(ip netns pids "$FAULTS_TAG-$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    # Before h_cleanup removes the directory it is mounted in.
    if mountpoint -q "$SPOOL_MOUNT" 2>/dev/null; then umount -l "$SPOOL_MOUNT" || true; fi
    set +e
    (exit "$status")
    h_cleanup
}
trap faults_cleanup EXIT

# ---- namespaces ----

# make_ns NAME: the scenario's agent namespace (made by the outer half, with its link). Sets NS
# (its name) and COORD_ADDR (the coordinator's address on that link).
make_ns() {
    local i=0 n
    for n in $AGENT_NAMESPACES; do
        i=$((i + 1))
        [[ $n == "$1" ]] && break
    done
    NS=$FAULTS_TAG-$1
    COORD_ADDR=10.77.$i.1
}

# start_relay NAME DELAY_MS: tests/faults/relay.py in this (the coordinator's) namespace on the
# link address COORD_ADDR, forwarding to the coordinator with DELAY_MS added each way; the
# agent NAME connects to it. Sets RELAY_ENDPOINT.
start_relay() {
    local port_file=$H_DIR/relay-$1.port
    "$PY" "$FAULTS_DIR/relay.py" --listen "$COORD_ADDR:0" --to "127.0.0.1:$H_PORT_AGENTS" \
        --delay-ms "$2" --port-file "$port_file" --hold-file "$H_DIR/relay-$1.hold" \
        2>"$H_DIR/relay-$1.log" &
    track_pid $!
    h_wait "the relay for $1 listening" 10 test -s "$port_file"
    RELAY_ENDPOINT=tcp://$COORD_ADDR:$(cat "$port_file")
}
# cut_outgoing NAME: what the agent sends goes nowhere (its relay holds it back), what the
# coordinator sends still arrives — a path TCP sees as healthy: the agent gives the connection
# up when 3 heartbeats (3 s) go unanswered, and what it sent on it arrives at the heal, late. (Dropping the agent's packets with nftables would drop its TCP
# acknowledgements too and stall the coordinator's side within one retransmission timeout.)
cut_outgoing() { : >"$H_DIR/relay-$1.hold"; }
# Faults on an agent namespace's link are rules in a table of its own there (vigil_faults).
# cut_incoming NS: every packet on the agent's link dropped, both ways: a full partition.
cut_incoming() {
    ip netns exec "$1" nft -f - <<NFT
table inet vigil_faults {
    chain out { type filter hook output priority 0; policy accept; oifname "eth0" counter drop; }
    chain in { type filter hook input priority 0; policy accept; iifname "eth0" counter drop; }
}
NFT
}
heal() { # NS NAME
    ip netns exec "$1" nft delete table inet vigil_faults
    rm -f "$H_DIR/relay-$2.hold"
}
lossy_link() { # NS PCT: PCT % of packets dropped each way, at random
    ip netns exec "$1" nft -f - <<NFT
table inet vigil_faults {
    chain out { type filter hook output priority 0; policy accept;
        oifname "eth0" numgen random mod 100 < $2 counter drop; }
    chain in { type filter hook input priority 0; policy accept;
        iifname "eth0" numgen random mod 100 < $2 counter drop; }
}
NFT
}
dropped_packets() { # NS: packets the fault rules dropped so far
    ip netns exec "$1" nft list table inet vigil_faults 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# ---- the coordinator (in this namespace, listening on every address of it) ----

public_of() { sed -n 's/^signing-public-key: "\(.*\)"$/\1/p' "$1"; }
mkdir -p "$H_DIR/runbooks"
# Only the runbook the lossy scenario's detection needs (and the one it depends on): no other
# incident, investigation or series from a thousand simulated nodes.
cp "$VIGIL_SRC/runbooks/application-down.yaml" "$VIGIL_SRC/runbooks/database-issues.yaml" "$H_DIR/runbooks/"
start_coordinator() {
    h_write_coordinator_config "runbooks:
  dir: \"$H_DIR/runbooks\""
    sed -i -e "s|agents: \"tcp://127.0.0.1:|agents: \"tcp://0.0.0.0:|" \
        -e "s|^admin:|admin:\n  signing_public_key: \"$(public_of "$H_DIR/admin.key.sign")\"|" \
        "$H_DIR/coordinator.yaml"
    "$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" >>"$H_DIR/coordinator.log" 2>&1 &
    H_COORD_PID=$!
    h_wait "coordinator healthy" 90 h_coordinator_healthy
}
start_coordinator
grep -q signing_key_file "$H_DIR/vigilctl.yaml" ||
    echo "signing_key_file: \"$H_DIR/admin.key.sign\"" >>"$H_DIR/vigilctl.yaml"
h_wait "the coordinator's signing key" 10 test -s "$H_DIR/coord/coordinator.sign"

# The nodes' root of trust and one harmless action, for commands made during a fault.
cat >"$H_DIR/signers.yaml" <<EOF
signers:
  - {name: coordinator, role: coordinator, public_key: "$(public_of "$H_DIR/coord/coordinator.sign")"}
  - {name: admin, role: admin, public_key: "$(public_of "$H_DIR/admin.key.sign")"}
EOF
chmod 644 "$H_DIR/signers.yaml"
mkdir -p "$H_DIR/bin"
printf '#!/bin/sh\necho "canary $1"\n' >"$H_DIR/bin/canary.sh"
chmod 755 "$H_DIR/bin/canary.sh"
CATALOG="signers_file: \"$H_DIR/signers.yaml\"
actions:
  - name: canary
    kind: exec
    argv: [$H_DIR/bin/canary.sh, \"{name}\"]
    root: true
    auto: true
    params:
      - {name: name, identifier: {pattern: \"[a-z]+\"}}"

# ---- agents ----

# agent_in_ns NS ENDPOINT AGENT -c FILE: the harness's agent, pointed at ENDPOINT and run in
# NS (the harness writes 127.0.0.1 into agent.yaml; used as H_AGENT_WRAP, so it runs in the
# background job h_start_agent makes, and its exec keeps the pid the harness recorded).
agent_in_ns() {
    local ns=$1 endpoint=$2
    shift 2
    sed -i "s|tcp://127.0.0.1:$H_PORT_AGENTS|$endpoint|" "${!#}"
    exec ip netns exec "$ns" "$@"
}
# start_agent NAME NS ENDPOINT [yaml]: (H_SELF_INTERVAL etc. as for h_start_agent)
start_agent() {
    H_AGENT_WRAP=(agent_in_ns "$2" "$3")
    h_start_agent "$1" "${4:-}"
    H_AGENT_WRAP=()
}
agent_active() { h_ctl agents -o json | jq -e --arg n "$1" 'any(.[]; .node == $n and .state == "active")' >/dev/null; }
agent_id() { h_ctl agents -o json | jq -r --arg n "$1" '.[] | select(.node == $n) | .id'; }
state_value() { sed -n "s/^$2 //p" "$H_DIR/agents/$1/state/spool/next-seq"; }
spool_empty() { ! ls "$H_DIR/agents/$1/state/spool/"*.seg >/dev/null 2>&1; }
stored_count() { h_sql "select count(*) from agent_messages where agent_id = '$1'"; }
stored_more_than() { (($(stored_count "$1") > $2)); }
now_ms() { date +%s%3N; }

# result LINE: a scenario's line, on stdout and kept for the summary.
result() { echo "$*"; echo "$*" >>"$RESULTS"; }

# track_pid PID: a process of this test outside the agent namespaces (a relay), ended on exit
# even when the scenario that started it ran in a subshell.
track_pid() { echo "$1" >>"$H_DIR/extra.pids"; }

# account_agent SCENARIO NAME: once the agent stops producing (restarted with its self signals
# an hour apart, as crash.sh does) and its spool is empty, counts every seq it ever made
# (1..h_spool_made): stored once, or dropped by its spool and counted there. Adds to the T_ totals
# report_scenario prints.
T_SENT=0 T_STORED=0 T_LOST=0 T_DUP=0 T_DROPPED=0 T_IN_FLIGHT=0
account_agent() {
    local scenario=$1 name=$2 id sent rows distinct in_range dup_samples dropped in_flight
    local ns endpoint
    ns=$(cat "$H_DIR/agents/$name/ns") endpoint=$(cat "$H_DIR/agents/$name/endpoint")
    id=$(agent_id "$name")
    h_stop_agent "$name"
    local quiet=$H_DIR/agents/$name/extra
    [[ -f $quiet.quiet ]] && quiet=$quiet.quiet # its collectors slowed down as well
    H_SELF_INTERVAL=1h start_agent "$name" "$ns" "$endpoint" "$(cat "$quiet")"
    # The restarted agent may still send what it measures as it starts: count only when its
    # highest seq did not move while the store was read.
    local tries before
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        h_wait "$name's spool drained" 120 spool_empty "$name"
        before=$(h_spool_made "$name")
        sent=$before
        read -r rows distinct < <(h_sql "select count(*), count(distinct seq) from agent_messages where agent_id = '$id'" | tr '|' ' ')
        in_range=$(h_sql "select count(distinct seq) from agent_messages where agent_id = '$id' and seq between 1 and $sent")
        # A message stored twice would leave the same sample (seq, name, labels, time) twice.
        dup_samples=$(h_sql "select count(*) from (select 1 from signals where agent_id = '$id'
            group by seq, name, labels, ts having count(*) > 1) d")
        [[ $(h_spool_made "$name") == "$before" ]] && spool_empty "$name" && break
        sleep 1
    done
    dropped=$(state_value "$name" dropped_messages)
    in_flight=$(state_value "$name" dropped_in_flight)
    ((distinct == in_range)) || h_fail "$scenario: $((distinct - in_range)) stored seqs $name never made"
    h_log "$scenario: $name sent=$sent stored=$in_range dropped=$dropped rows=$rows duplicate_samples=$dup_samples"
    T_SENT=$((T_SENT + sent)) T_STORED=$((T_STORED + in_range)) T_DROPPED=$((T_DROPPED + dropped))
    T_IN_FLIGHT=$((T_IN_FLIGHT + ${in_flight:-0}))
    T_LOST=$((T_LOST + sent - in_range - dropped)) T_DUP=$((T_DUP + rows - distinct + dup_samples))
}

# report_scenario SCENARIO [figures]: the scenario's line from the T_ totals, and its verdict.
report_scenario() {
    local scenario=$1 extra=${2:-}
    # A message the spool dropped while it was in flight (sent, not acknowledged) may have been
    # stored all the same: counted as dropped and stored, at most T_IN_FLIGHT of them.
    local stored_after_drop=0
    if ((T_LOST < 0 && -T_LOST <= T_IN_FLIGHT)); then
        stored_after_drop=$((-T_LOST))
        T_LOST=0
    fi
    local line="faults: scenario=$scenario sent=$T_SENT stored=$T_STORED lost=$T_LOST duplicated=$T_DUP"
    ((T_DROPPED == 0)) || line+=" dropped=$T_DROPPED dropped_in_flight=$T_IN_FLIGHT stored_after_drop=$stored_after_drop"
    result "$line${extra:+ $extra}"
    ((T_SENT > 30)) || h_fail "$scenario: only $T_SENT messages made: the test did not exercise much"
    ((T_LOST >= 0)) || h_fail "$scenario: $((-T_LOST)) messages counted as dropped more than are missing (of $T_IN_FLIGHT dropped in flight)"
    ((T_LOST == 0)) || h_fail "$scenario: $T_LOST messages neither stored nor counted as dropped"
    ((T_DUP == 0)) || h_fail "$scenario: $T_DUP messages or samples stored twice"
    T_SENT=0 T_STORED=0 T_LOST=0 T_DUP=0 T_DROPPED=0 T_IN_FLIGHT=0
}

# fault_agent NAME ENDPOINT [yaml]: an agent in namespace $NS (make_ns), pointed at ENDPOINT,
# active, its first messages stored. Sets AID.
fault_agent() {
    local name=$1 endpoint=$2 extra=${3:-}
    mkdir -p "$H_DIR/agents/$name"
    echo "$NS" >"$H_DIR/agents/$name/ns"
    echo "$endpoint" >"$H_DIR/agents/$name/endpoint"
    printf '%s' "$extra" >"$H_DIR/agents/$name/extra"
    start_agent "$name" "$NS" "$endpoint" "$extra"
    h_wait "$name active" 60 agent_active "$name"
    AID=$(agent_id "$name")
    h_wait "$name's first messages stored" 60 stored_more_than "$AID" 5
}

# Every command report of the agent's commands stored once: accepted, started, done each.
check_reports() { # SCENARIO AGENT_ID COMMANDS
    local reports dup
    reports=$(h_sql "select count(*) from command_reports where agent_id = '$2' and step in ('accepted', 'started', 'done')")
    dup=$(h_sql "select count(*) from (select 1 from command_reports where agent_id = '$2'
        group by request_id, step having count(*) > 1) d")
    ((reports == 3 * $3)) || h_fail "$1: $reports command reports stored for $3 commands (expected $((3 * $3)))"
    ((dup == 0)) || h_fail "$1: $dup command reports stored twice"
}
# Every collection asked of the agent stored, one artifact each (each command's output is one
# more: an artifact of kind command_output).
check_evidence() { # SCENARIO AGENT_ID COLLECTIONS
    local stored artifacts
    # A command's output is asked for once its report is in: wait for the last of them.
    all_stored() { (($(h_sql "select count(*) from evidence_targets where agent_id = '$2' and status = 'stored'") >= $3)); }
    h_wait "$3 artifacts from $2 stored" 60 all_stored "$@"
    stored=$(h_sql "select count(*) from evidence_targets where agent_id = '$2' and status = 'stored'")
    artifacts=$(h_sql "select count(*) from evidence where agent_id = '$2'")
    ((stored == $3)) || h_fail "$1: $stored of $3 collections stored: $(h_sql "select collection_id, status, error from evidence_targets where agent_id = '$2'" | tr '\n' ' ')"
    ((artifacts == $3)) || h_fail "$1: $artifacts artifacts stored for $3 collections"
}
run_canary() { # NODE: a command's id
    h_ctl run canary --node "$1" --arg name=fault -o json | jq -r 'if type == "array" then .[0].id else .id end'
}

# ---- partition ----
scenario_partition() {
    local name=part-1
    make_ns part
    start_relay "$name" 0
    H_SELF_INTERVAL=200ms fault_agent "$name" "$RELAY_ENDPOINT" "$CATALOG"
    local ns=$NS aid=$AID
    h_log "partition: $name cut off for ${PARTITION_S}s"
    local cut_at=$SECONDS
    cut_outgoing "$name"
    # One way only for now: the coordinator's requests still reach the agent, whose answers
    # stay in its spool. The collections wait for as long as the partition lasts.
    local i cmd=() evidence_pids=()
    for i in 1 2; do
        h_ctl collect --node "$name" --timeout "$((PARTITION_S + 120))s" -o json \
            "$([[ $i == 1 ]] && echo host || echo netstat)" >"$H_DIR/part-collect.$i" 2>&1 &
        evidence_pids+=($!)
    done
    cmd+=("$(run_canary "$name")")
    sleep 1
    cut_incoming "$ns"
    local before
    before=$(h_spool_made "$name")
    local left=$((PARTITION_S - (SECONDS - cut_at)))
    ((left <= 0)) || sleep "$left"
    (($(h_spool_made "$name") - before > 10)) || h_fail "partition: $name did not keep producing while cut off"
    local lost_packets
    lost_packets=$(dropped_packets "$ns")
    local heal_ms
    heal_ms=$(now_ms)
    heal "$ns" "$name"
    h_log "partition: healed after $((SECONDS - cut_at))s ($lost_packets packets dropped)"
    local backlog
    backlog=$(h_spool_made "$name")
    stored_through() { (($(h_sql "select count(distinct seq) from agent_messages where agent_id = '$aid' and seq <= $backlog") == backlog)); }
    h_wait "$name's backlog stored" 120 stored_through
    local caught_up_ms=$(($(now_ms) - heal_ms))
    for i in "${evidence_pids[@]}"; do wait "$i" || h_fail "partition: vigilctl collect: $(cat "$H_DIR"/part-collect.*)"; done
    check_evidence partition "$aid" "$((2 + ${#cmd[@]}))"
    local early
    early=$(h_sql "select count(*) from evidence where agent_id = '$aid' and stored_at < to_timestamp($heal_ms / 1000.0)")
    ((early == 0)) || h_fail "partition: $early artifacts stored before the heal: the test did not cut the link"
    check_reports partition "$aid" "${#cmd[@]}"
    account_agent partition "$name"
    report_scenario partition "seconds=$PARTITION_S evidence=2 commands=${#cmd[@]} packets_dropped=$lost_packets caught_up_ms=$caught_up_ms"
}

# ---- spool on a small tmpfs ----
scenario_spool_full() {
    local name=spool-1 dir=$H_DIR/agents/spool-1
    mkdir -p "$SPOOL_MOUNT"
    chmod 700 "$dir/state" "$SPOOL_MOUNT"
    mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0700" vigil-faults-spool "$SPOOL_MOUNT"
    # The spool's own bound is far above the filesystem's: the disk fills first. Evidence in
    # chunks of 16 KiB, so an artifact is several records.
    make_ns spool
    start_relay "$name" 0
    H_SELF_INTERVAL=10ms fault_agent "$name" "$RELAY_ENDPOINT" "$CATALOG
spool:
  max_size: 16MiB
  segment_size: 64KiB
  fsync: false
evidence:
  chunk_size: 16KiB
collectors:
  host:
    interval: 0s
  netstat:
    interval: 0s"
    local ns=$NS aid=$AID
    cut_outgoing "$name"
    local i cmd=() evidence_pids=()
    for i in 1 2; do
        h_ctl collect --node "$name" --timeout 150s -o json processes >"$H_DIR/spool-collect.$i" 2>&1 &
        evidence_pids+=($!)
    done
    cmd+=("$(run_canary "$name")" "$(run_canary "$name")")
    sleep 1
    cut_incoming "$ns"
    overflowed() { [[ $(state_value "$name" dropped_messages) -gt 0 ]]; }
    h_wait "the spool's tmpfs fills and signals are dropped" 120 overflowed
    sleep 3 # more appends on a full disk
    local used
    used=$(df --output=pcent "$dir/state/spool" | tail -1 | tr -d ' %')
    h_log "spool-full: tmpfs ${used}% used, dropped $(state_value "$name" dropped_messages) messages"
    local heal_ms
    heal_ms=$(now_ms)
    heal "$ns" "$name"
    for i in "${evidence_pids[@]}"; do wait "$i" || h_fail "spool-full: vigilctl collect: $(cat "$H_DIR"/spool-collect.*)"; done
    h_wait "the commands' reports stored" 60 reports_in "$aid" "${#cmd[@]}"
    check_evidence spool-full "$aid" "$((2 + ${#cmd[@]}))"
    check_reports spool-full "$aid" "${#cmd[@]}"
    # They were in the spool while it overflowed: nothing of theirs arrived before the heal.
    local early
    early=$(h_sql "select (select count(*) from evidence where agent_id = '$aid' and stored_at < to_timestamp($heal_ms / 1000.0))
        + (select count(*) from command_reports r join agent_messages m on m.agent_id = r.agent_id and m.seq = r.seq
           where r.agent_id = '$aid' and m.received_at < to_timestamp($heal_ms / 1000.0))")
    ((early == 0)) || h_fail "spool-full: $early artifacts or reports stored before the heal: the test did not cut the link"
    # The agent spooled, and lost, nothing it did not count.
    local uncounted
    uncounted=$(grep -c -E 'not stored|not spooled|spooling failed' "$dir/agent.log" || true)
    ((uncounted == 0)) || { grep -E 'not stored|not spooled|spooling failed' "$dir/agent.log" | head >&2; h_fail "spool-full: $uncounted messages the agent could not spool (not counted as dropped)"; }
    account_agent spool-full "$name"
    report_scenario spool-full "tmpfs=$TMPFS_SIZE evidence=2 commands=${#cmd[@]}"
    local final
    final=$(state_value "$name" dropped_messages)
    reported() { [[ $(h_ctl agents -o json | jq -r --arg n "$name" '.[] | select(.node == $n) | .dropped_messages') == "$final" ]]; }
    h_wait "the agent reports exactly $final dropped messages" 30 reported
}
reports_in() { (($(h_sql "select count(*) from command_reports where agent_id = '$1' and step = 'done'") >= $2)); }

# ---- loss and delay ----
pctl() { # P: the P-th percentile of the numbers on stdin (nearest rank)
    sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print 0; exit } i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i] }'
}
scenario_lossy() {
    local name=lossy-1
    make_ns lossy
    local ns=$NS app_pid_file=$H_DIR/app.pid
    start_relay "$name" "$DELAY_MS"
    # The watched application: a process in the agent's namespace, its pid in a file.
    start_app() {
        ip netns exec "$ns" sleep 100000 &
        echo $! >"$app_pid_file.tmp"
        mv "$app_pid_file.tmp" "$app_pid_file"
    }
    start_app
    H_SELF_INTERVAL=200ms fault_agent "$name" "$RELAY_ENDPOINT" "collectors:
  host:
    interval: 0s
  netstat:
    interval: 0s
  processes:
    interval: 1s
    watch:
      - {name: app, pidfile: \"$app_pid_file\"}"
    local aid=$AID
    printf 'collectors:\n  host:\n    interval: 0s\n  netstat:\n    interval: 0s\n  processes:\n    interval: 0s\n' \
        >"$H_DIR/agents/$name/extra.quiet"
    lossy_link "$ns" "$LOSS_PCT"
    local lossy_from
    lossy_from=$(now_ms)
    h_log "lossy: ${LOSS_PCT}% of packets dropped each way, ${DELAY_MS} ms each way, $TRIALS kills"
    app_state_since() { # VALUE MS: proc.up VALUE stored, measured at or after MS
        [[ -n $(h_sql "select 1 from signals where agent_id = '$aid' and name = 'proc.up'
            and value = $1 and ts >= to_timestamp($2 / 1000.0) limit 1") ]]
    }
    local t detect=() incident_ms="" t0 started
    for ((t = 1; t <= TRIALS; t++)); do
        started=$(now_ms)
        h_wait "the application seen up" 30 app_state_since 1 "$started"
        t0=$(now_ms)
        kill -KILL "$(cat "$app_pid_file")"
        # (measured from $started: the previous kill's proc.up 0 was stored before it)
        h_wait "the kill detected" 30 app_state_since 0 "$started"
        detect+=("$(h_sql "select round(extract(epoch from m.received_at) * 1000) - $t0
            from signals s join agent_messages m on m.agent_id = s.agent_id and m.seq = s.seq
            where s.agent_id = '$aid' and s.name = 'proc.up' and s.value = 0
              and s.ts >= to_timestamp($started / 1000.0) order by m.received_at limit 1")")
        if [[ -z $incident_ms ]]; then
            opened() { [[ -n $(h_sql "select 1 from incidents where runbook = 'application-down' and opened_at >= to_timestamp($t0 / 1000.0)") ]]; }
            h_wait "the application-down incident opened" 30 opened
            incident_ms=$(h_sql "select round(extract(epoch from min(opened_at)) * 1000) - $t0 from incidents
                where runbook = 'application-down' and opened_at >= to_timestamp($t0 / 1000.0)")
        fi
        start_app
    done
    local packets
    packets=$(dropped_packets "$ns")
    local d50 d99 i50 i99 imax n
    d50=$(printf '%s\n' "${detect[@]}" | pctl 50)
    d99=$(printf '%s\n' "${detect[@]}" | pctl 99)
    local delivery
    delivery=$(h_sql "select round(extract(epoch from received_at - sent_at) * 1000) from agent_messages
        where agent_id = '$aid' and sent_at >= to_timestamp($lossy_from / 1000.0)")
    n=$(grep -c . <<<"$delivery")
    i50=$(pctl 50 <<<"$delivery") i99=$(pctl 99 <<<"$delivery") imax=$(pctl 100 <<<"$delivery")
    h_log "lossy: detection ms ${detect[*]}; incident ${incident_ms} ms; delivery of $n messages p50 $i50 p99 $i99 max $imax ms; $packets packets dropped"
    ((packets > 0)) || h_fail "lossy: no packet was dropped: the fault was not there"
    account_agent lossy "$name"
    report_scenario lossy "loss_pct=$LOSS_PCT delay_ms=$DELAY_MS packets_dropped=$packets kills=$TRIALS detect_p50_ms=$d50 detect_p99_ms=$d99 incident_ms=$incident_ms delivery_p50_ms=$i50 delivery_p99_ms=$i99 delivery_max_ms=$imax"
    ((d50 <= 300 && d99 <= 1000)) || h_fail "lossy: detection p50 ${d50} ms / p99 ${d99} ms (targets 300 / 1000 ms)"
    ((i99 <= 2000)) || h_fail "lossy: delivery p99 ${i99} ms (target 2000 ms, the agent's ack timeout)"
}

# ---- coordinator SIGKILL during a burst ----
scenario_kill() {
    make_ns burst # one namespace for the three
    local endpoint="tcp://$COORD_ADDR:$H_PORT_AGENTS" n round
    local agents=(burst-1 burst-2 burst-3)
    for n in "${agents[@]}"; do H_SELF_INTERVAL=20ms fault_agent "$n" "$endpoint"; done
    sleep 2
    for ((round = 1; round <= KILLS; round++)); do
        h_log "kill: round $round: SIGKILL the coordinator while three agents send every 20 ms"
        h_kill_coordinator
        sleep 1.5
        start_coordinator
        sleep 2
    done
    for n in "${agents[@]}"; do account_agent kill "$n"; done
    report_scenario kill "agents=3 kills=$KILLS"
}

# ---- reconnect storm ----
scenario_storm() {
    make_ns sim
    local endpoint="tcp://$COORD_ADDR:$H_PORT_AGENTS" out=$H_DIR/sim.out ids=$H_DIR/sim.ids
    ip netns exec "$NS" "$VIGIL_BUILD/vigil-sim" steady --endpoint "$endpoint" \
        --server-key "$H_COORD_PUB" --secret-file "$H_DIR/enrollment.secret" \
        --agents "$SIM_AGENTS" --seconds 3600 --interval-ms 1000 --signals-per-message 5 \
        --node-prefix storm --ids-file "$ids" --stop-file "$H_DIR/sim.stop" \
        --enroll-seconds 300 >"$out" 2>"$H_DIR/sim.err" &
    local sim_pid=$!
    sim_ready() { kill -0 "$sim_pid" 2>/dev/null || h_fail "storm: vigil-sim exited: $(cat "$out" "$H_DIR/sim.err")"; grep -q "sim: ready" "$out"; }
    local enroll_from=$SECONDS
    h_wait "$SIM_AGENTS simulated agents enrolled" 320 sim_ready
    h_log "storm: $SIM_AGENTS agents enrolled in $((SECONDS - enroll_from))s; restarting the coordinator"
    sleep 3
    local t_stop t_up mark
    t_stop=$(now_ms)
    h_stop_coordinator
    mark=$(($(wc -l <"$H_DIR/coordinator.log") + 1))
    start_coordinator
    t_up=$(now_ms)
    all_back() {
        coordinator_alive storm
        (($(h_sql "select count(distinct m.agent_id) from agent_messages m join agents a on a.id = m.agent_id
            where a.node like 'storm-%' and m.received_at > to_timestamp($t_up / 1000.0)") == SIM_AGENTS))
    }
    h_wait "every simulated agent storing again" "$STORM_BOUND_S" all_back
    local steady_ms
    steady_ms=$(h_sql "select round(extract(epoch from max(first)) * 1000) - $t_up from (
        select min(m.received_at) as first from agent_messages m join agents a on a.id = m.agent_id
        where a.node like 'storm-%' and m.received_at > to_timestamp($t_up / 1000.0) group by m.agent_id) f")
    local zap_refused refused_total
    zap_refused=$(tail -n +"$mark" "$H_DIR/coordinator.log" | grep -c 'zap: refused' || true)
    refused_total=$(curl -fsS "http://127.0.0.1:$H_PORT_HTTP/metrics" |
        awk '$1 ~ /^vigil_messages_refused_total/ { s += $2 } END { print s + 0 }')
    touch "$H_DIR/sim.stop"
    local sim_status=0
    wait "$sim_pid" || sim_status=$?
    local sim_line
    sim_line=$(grep 'sim: steady' "$out" || true)
    h_log "storm: $sim_line"
    [[ -s $ids ]] || h_fail "storm: vigil-sim wrote no ids: $(cat "$out" "$H_DIR/sim.err")"
    # From the database: every seq 1..last of every simulated agent stored once.
    local values sent stored dup
    values=$(awk 'BEGIN { ORS = "" } { if (NR > 1) print ","; printf "(\x27%s\x27, %d)", $1, $2 }' "$ids")
    sent=$(awk '{ s += $2 } END { print s + 0 }' "$ids")
    stored=$(h_sql "with ids(agent_id, last) as (values $values)
        select count(*) from agent_messages m join ids on m.agent_id = ids.agent_id and m.seq between 1 and ids.last")
    dup=$(h_sql "with ids(agent_id, last) as (values $values)
        select count(*) from (select 1 from signals s join ids on s.agent_id = ids.agent_id
        group by s.agent_id, s.seq, s.name, s.labels, s.ts, s.value having count(*) > 1) d")
    T_SENT=$sent T_STORED=$stored T_LOST=$((sent - stored)) T_DUP=$dup
    local refused_sim
    refused_sim=$(sed -n 's/.* refused=\([0-9]*\).*/\1/p' <<<"$sim_line")
    report_scenario storm "agents=$SIM_AGENTS restart_ms=$((t_up - t_stop)) steady_ms=$steady_ms refused=$((zap_refused + refused_total + ${refused_sim:-0}))"
    ((sim_status == 0)) || h_fail "storm: vigil-sim: $sim_line $(tail -5 "$H_DIR/sim.err")"
    ((zap_refused == 0)) || h_fail "storm: the coordinator refused $zap_refused handshakes of enrolled agents"
    ((refused_total == 0)) || h_fail "storm: the coordinator refused $refused_total messages"
}

# coordinator_alive SCENARIO: fails at once, saying why, when the coordinator died. Seen in the
# long storm before the agents' socket lost its ZMTP heartbeats: libzmq 4.3.4 aborting with
# "Assertion failed: !_io_error (src/stream_engine_base.cpp:331)" (a connection whose input is
# stopped at its RCVHWM gets a hang-up, and the heartbeat timer then writes to the broken
# engine; VG_LIVENESS_TCP in common/wire.h).
coordinator_alive() {
    kill -0 "$H_COORD_PID" 2>/dev/null && return 0
    h_fail "$1: the coordinator died: $(grep -m1 -E 'Assertion failed|Sanitizer|Segmentation' "$H_DIR/coordinator.log" || tail -n 3 "$H_DIR/coordinator.log")"
}

# ---- run ----
started=$SECONDS
failed=()
pids=() names=()
for s in partition spool-full lossy; do
    wanted "$s" || continue
    # (bash runs an inherited EXIT trap in a subshell that calls exit, as h_fail does: the
    # cleanup belongs to the main shell alone)
    (trap - EXIT; scenario_${s//-/_}) &
    pids+=($!) names+=("$s")
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${names[$i]}")
done
((${#failed[@]} == 0)) || h_fail "failed: ${failed[*]}"
wanted kill && scenario_kill
wanted storm && scenario_storm
coordinator_alive "after the scenarios"
! grep -q 'Assertion failed' "$H_DIR/coordinator.log" ||
    h_fail "a coordinator aborted during the suite: $(grep -m1 'Assertion failed' "$H_DIR/coordinator.log")"
echo "----- faults summary ($([[ $SHORT == 1 ]] && echo short || echo long), $((SECONDS - started)) s) -----"
cat "$RESULTS"
h_pass "every scenario stored everything exactly once: ${SCENARIOS[*]}"
