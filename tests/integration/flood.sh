#!/usr/bin/env bash
# Unauthenticated traffic must not cost the coordinator memory. Anyone holding the coordinator's
# public key (every node does) can open a CURVE connection; such a peer, never enrolled, sends
# 400 messages of 4 MiB made of unknown protobuf fields (once 1.5 GB of coordinator memory and
# vigilctl unanswered for more than 5 s). Then an enrolled agent does the same: its messages
# are still accepted (a newer agent's unknown fields are capped, not refused) without the
# decoding cost.
source "$(dirname "$0")/../lib/harness.sh"
# Under the sanitizer build, AddressSanitizer keeps freed memory in a 256 MiB quarantine, which
# would read as growth: a small one keeps the bound meaningful there too (ignored otherwise).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
h_setup
h_start_coordinator

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$H_COORD_PID/status"; }
now_ms() { date +%s%3N; }
MAX_GROWTH_KIB=$((192 * 1024))

# vigilctl answering while a flood runs: every call within 3 s (it once went unanswered for
# more than 5 s); the sanitizer build is several times slower, so 10 s there.
MAX_ANSWER_MS=3000
ldd "$VIGIL_BUILD/vigil-coordinator" | grep libasan >/dev/null && MAX_ANSWER_MS=10000
answers_during() { # PID of the flood
    local slowest=0 t0 took
    while kill -0 "$1" 2>/dev/null; do
        t0=$(now_ms)
        h_ctl agents >/dev/null || h_fail "vigilctl agents failed during the flood"
        took=$(($(now_ms) - t0))
        ((took > slowest)) && slowest=$took
        sleep 0.2
    done
    ((slowest < MAX_ANSWER_MS)) || h_fail "vigilctl agents took ${slowest} ms during the flood"
    h_log "vigilctl agents answered within ${slowest} ms during the flood"
}

# flood WHO EXPECTED SIM-ARGS...: a flood from vigil-sim with vigilctl asked all along; its
# answers must match EXPECTED and the coordinator's peak memory stay within MAX_GROWTH_KIB.
base=$(status_kib VmHWM)
flood() {
    local who=$1 expected=$2 out=$H_DIR/flood.out
    shift 2
    h_sim bad "$@" >"$out" &
    local pid=$!
    answers_during "$pid"
    wait "$pid" || h_fail "$who's flood: $(cat "$out")"
    grep -q "$expected" "$out" || h_fail "$who's flood, expected \"$expected\": $(cat "$out")"
    local peak
    peak=$(status_kib VmHWM)
    h_log "$who: coordinator peak memory $base -> $peak KiB"
    ((peak - base < MAX_GROWTH_KIB)) || h_fail "coordinator memory grew by $(((peak - base) / 1024)) MiB"
}

# Every message of a never-enrolled peer is refused, without being decoded.
flood "a never-enrolled peer, 400 x 4 MiB" "flood: sent=400 answered=400 refused=400" \
    flood-unenrolled --messages 400
# An agent's messages with unknown fields are accepted, the fields dropped before decoding.
flood "an enrolled agent, 100 x 4 MiB of unknown fields" "flood: sent=100 answered=100 refused=0 acked=100" \
    flood-unknown --messages 100 --secret-file "$H_DIR/enrollment.secret"
capped=$(h_metric vigil_messages_unknown_fields_capped_total)
[[ $capped -ge 100 ]] || h_fail "vigil_messages_unknown_fields_capped_total is $capped, expected >= 100"
h_pass "floods of unknown fields cost bounded memory; vigilctl kept answering"
