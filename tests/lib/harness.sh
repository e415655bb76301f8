# Integration test harness: real processes on loopback, in a private temporary directory.
#
#   source "$VIGIL_SRC/tests/lib/harness.sh"
#   h_setup                      # temp dir, free ports, keys, enrollment secret
#   h_start_coordinator [yaml]   # extra YAML lines appended to the coordinator config
#                                # (H_ENROLLMENT_YAML: more keys of its enrollment: section)
#   h_start_agent NAME [yaml]    # an agent with node NAME (token from the secret by default)
#   h_ctl agents -o json         # vigilctl as the admin operator
#   h_sql "select ..."           # psql against the coordinator's private cluster
#   h_wait "what" TIMEOUT_S cmd  # poll until cmd succeeds, or fail the test
#   h_capture OUT RC cmd...      # cmd's output and exit status into variables, set -e aside
# Everything started is stopped on exit, including a PostgreSQL left by a killed coordinator.
set -euo pipefail

VIGIL_SRC=${VIGIL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VIGIL_BUILD=${VIGIL_BUILD:-$VIGIL_SRC/build}
H_TEST=$(basename "$0" .sh)

declare -A H_AGENT_PIDS=()
H_COORD_PID=""

h_log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$H_TEST" "$*" >&2; }
h_fail() {
    h_log "FAIL: $*"
    h_dump_logs
    exit 1
}
h_pass() { h_log "PASS: $*"; }

h_dump_logs() {
    local f
    for f in "$H_DIR"/coordinator.log "$H_DIR"/agents/*/agent.log; do
        [[ -f $f ]] || continue
        echo "----- ${f#$H_DIR/} (last 40 lines) -----" >&2
        tail -n 40 "$f" >&2
    done
}

h_free_port() {
    local p
    while :; do
        # Below Linux's ephemeral range (32768-60999), so outgoing connections never hold it.
        p=$((20000 + RANDOM % 12000))
        (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# h_nginx_conf DIR ACCESS_LOG SERVERS: writes DIR/nginx.conf for an nginx in the foreground
# whose pid file, logs and temporary files stay under DIR (root runs it as root: the test's
# files are root's). ACCESS_LOG is a path or "off"; SERVERS the http block's server { } text.
h_nginx_conf() {
    local dir=$1 access=$2 servers=$3 user_line=""
    [[ $(id -u) == 0 ]] && user_line="user root;"
    mkdir -p "$dir/tmp" "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
$user_line
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 64; }
http {
    access_log $access;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$servers
}
CONF
}

h_key_public() { sed -n 's/^public-key: *"\(.*\)"/\1/p' "$1"; }
h_key_secret() { sed -n 's/^secret-key: *"\(.*\)"/\1/p' "$1"; }

# h_write_ctl_config OUT KEYFILE: a vigilctl configuration (mode 0600) for the operator whose
# key pair is in KEYFILE, pointed at this test's coordinator.
h_write_ctl_config() {
    (umask 077 && cat >"$1" <<YAML
coordinator: "tcp://127.0.0.1:$H_PORT_ADMIN"
coordinator_public_key: "$H_COORD_PUB"
public_key: "$(h_key_public "$2")"
secret_key: "$(h_key_secret "$2")"
YAML
    )
}

h_setup() {
    H_DIR=$(mktemp -d /tmp/vigil-it.XXXXXX)
    # PostgreSQL (as postgres) and agents (as nobody) must be able to traverse it.
    chmod 711 "$H_DIR"
    mkdir -p "$H_DIR/coord" "$H_DIR/agents"
    chmod 711 "$H_DIR/coord"
    H_PORT_AGENTS=$(h_free_port)
    H_PORT_ADMIN=$(h_free_port)
    H_PORT_HTTP=$(h_free_port)
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$H_DIR/enrollment.secret")
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/coord/coordinator.key" >/dev/null
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/admin.key" >/dev/null
    H_COORD_PUB=$(h_key_public "$H_DIR/coord/coordinator.key")
    h_write_ctl_config "$H_DIR/vigilctl.yaml" "$H_DIR/admin.key"
    trap h_cleanup EXIT
    trap "exit 143" TERM INT
    h_log "dir=$H_DIR agents=:$H_PORT_AGENTS admin=:$H_PORT_ADMIN http=:$H_PORT_HTTP"
}

h_write_coordinator_config() {
    cat >"$H_DIR/coordinator.yaml" <<YAML
state_dir: "$H_DIR/coord"
listen:
  agents: "tcp://127.0.0.1:$H_PORT_AGENTS"
  admin: "tcp://127.0.0.1:$H_PORT_ADMIN"
http:
  address: "127.0.0.1"
  port: $H_PORT_HTTP
enrollment:
  secret_file: "$H_DIR/enrollment.secret"
  rate_per_minute: 0
${H_ENROLLMENT_YAML:-}
agents:
  heartbeat_interval: ${H_HEARTBEAT:-1s}
admin:
  public_key: "$(h_key_public "$H_DIR/admin.key")"
log:
  level: ${H_LOG_LEVEL:-info}
${1:-}
YAML
}

h_healthz() { curl -fsS -o /dev/null "http://127.0.0.1:$H_PORT_HTTP/healthz" 2>/dev/null; }
h_coordinator_healthy() {
    kill -0 "$H_COORD_PID" 2>/dev/null || h_fail "the coordinator exited during start-up"
    h_healthz
}

h_start_coordinator() {
    h_write_coordinator_config "${1:-}"
    "$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" >>"$H_DIR/coordinator.log" 2>&1 &
    H_COORD_PID=$!
    h_wait "coordinator healthy" 90 h_coordinator_healthy
}

h_stop_coordinator() {
    [[ -n $H_COORD_PID ]] || return 0
    kill -TERM "$H_COORD_PID" 2>/dev/null || true
    wait "$H_COORD_PID" 2>/dev/null || true
    H_COORD_PID=""
}

h_kill_coordinator() {
    kill -KILL "$H_COORD_PID"
    wait "$H_COORD_PID" 2>/dev/null || true
    H_COORD_PID=""
}

# h_start_agent NAME [extra yaml]; set H_NO_TOKEN=1 for an agent without a bootstrap token,
# H_NODE for a node name other than NAME (NAME still names its directory), and
# H_AGENT_WRAP (an array) to start it through a command (e.g. unshare) that execs its arguments.
H_AGENT_WRAP=()
h_start_agent() {
    local name=$1 extra=${2:-} dir="$H_DIR/agents/$1" enroll=""
    mkdir -p "$dir"
    [[ ${H_NO_TOKEN:-0} == 1 ]] || enroll="secret_file: \"$H_DIR/enrollment.secret\""
    cat >"$dir/agent.yaml" <<YAML
node: "${H_NODE:-$name}"
state_dir: "$dir/state"
user: ""
allow_root: true
coordinator:
  endpoint: "tcp://127.0.0.1:$H_PORT_AGENTS"
  public_key: "$H_COORD_PUB"
enrollment:
  $enroll
heartbeat_interval: ${H_HEARTBEAT:-1s}
self_signals_interval: ${H_SELF_INTERVAL:-1s}
batch_interval: ${H_BATCH_INTERVAL:-0s}
link:
  reconnect_min: 100ms
  reconnect_max: 1s
  ack_timeout: 2s
$extra
YAML
    "${H_AGENT_WRAP[@]}" "$VIGIL_BUILD/vigil-agent" -c "$dir/agent.yaml" >>"$dir/agent.log" 2>&1 &
    H_AGENT_PIDS[$name]=$!
}

h_stop_agent() {
    local pid=${H_AGENT_PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "H_AGENT_PIDS[$1]"
}

h_agent_id() { # the id an agent's key maps to (from its log)
    sed -n 's/.*agent=\(ag-[0-9a-f]*\) node=.*key.*/\1/p' "$H_DIR/agents/$1/agent.log" | head -1
}

# h_spool_made NAME: the highest seq agent NAME has made. next-seq's ceiling alone lags while the
# spool holds records: with fsync a record proves its own seq, and the ceiling is written only
# when the newest segment goes (agent/spool.c, "Sequence numbers"); so the newest record of the
# newest segment counts too (header: magic u32, length u32, crc u32, seq u64, kind u8, samples u32).
h_spool_made() {
    "${VIGIL_PYTHON:-/usr/bin/python3}" - "$H_DIR/agents/$1/state/spool" <<'PYEOF'
import glob, os, re, struct, sys
spool = sys.argv[1]
made = 0
try:
    m = re.search(r"^seq_ceiling (\d+)$", open(os.path.join(spool, "next-seq")).read(), re.M)
    made = int(m.group(1)) - 1 if m else 0
except FileNotFoundError:
    pass
segs = sorted(glob.glob(os.path.join(spool, "*.seg")))
if segs:
    data = open(segs[-1], "rb").read()
    off = 0
    while off + 25 <= len(data):
        length, = struct.unpack_from("<I", data, off + 4)
        made = max(made, struct.unpack_from("<Q", data, off + 12)[0])
        off += 25 + length
print(made)
PYEOF
}

h_ctl() { VIGIL_CONFIG="$H_DIR/vigilctl.yaml" "$VIGIL_BUILD/vigilctl" "$@"; }

h_sql() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    psql -X -q -A -t -h "$sock" -p 5432 -U vigil -d vigil -v ON_ERROR_STOP=1 -c "$1"
}

h_metric() { # h_metric 'name{labels}' -> value (0 when absent)
    curl -fsS "http://127.0.0.1:$H_PORT_HTTP/metrics" | awk -v m="$1" '$1 == m { print $2; f=1 } END { if (!f) print 0 }'
}

# h_capture OUT RC CMD...: runs CMD with its stdout and stderr in the variable named OUT and its
# exit status in the one named RC ("_" when the status does not matter); a failing CMD does not
# stop the test (set -e is off around it).
h_capture() {
    local __out_var=$1 __rc_var=$2 __out __rc
    shift 2
    set +e
    __out=$("$@" 2>&1)
    __rc=$?
    set -e
    printf -v "$__out_var" '%s' "$__out"
    [[ $__rc_var == _ ]] || printf -v "$__rc_var" '%s' "$__rc"
}

h_wait() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || h_fail "timed out after ${timeout}s waiting for: $what"
        sleep 0.2
    done
}

h_sim() { "$VIGIL_BUILD/vigil-sim" "$@" --endpoint "tcp://127.0.0.1:$H_PORT_AGENTS" --server-key "$H_COORD_PUB"; }

# h_start_sink: tests/tools/http_sink.py on a free port, standing for Slack, webhooks, a watchdog
# receiver: every request appended to $SINK_LOG (JSON lines), answered as $H_DIR/sink.mode says
# (a status code, or "hang"; 200 when the file is absent). Sets SINK (its base URL) and
# SINK_PID; h_cleanup stops it.
h_start_sink() {
    SINK_LOG=$H_DIR/sink.jsonl
    : >"$SINK_LOG"
    "${VIGIL_PYTHON:-/usr/bin/python3}" "$VIGIL_SRC/tests/tools/http_sink.py" --log "$SINK_LOG" \
        --port-file "$H_DIR/sink.port" --mode-file "$H_DIR/sink.mode" >"$H_DIR/sink.out" 2>&1 &
    SINK_PID=$!
    h_wait "the HTTP sink listening" 10 test -s "$H_DIR/sink.port"
    SINK=http://127.0.0.1:$(cat "$H_DIR/sink.port")
}

h_cleanup() {
    local status=$?
    local name
    [[ -z ${SINK_PID:-} ]] || kill "$SINK_PID" 2>/dev/null || true
    for name in "${!H_AGENT_PIDS[@]}"; do h_stop_agent "$name"; done
    h_stop_coordinator
    # A coordinator killed with SIGKILL leaves its private PostgreSQL running.
    local pgdata
    pgdata=$(readlink -f "$H_DIR/coord/pgdata" 2>/dev/null || true)
    if [[ -n $pgdata && -f $pgdata/postmaster.pid ]]; then
        local bindir
        bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
        runuser -u postgres -- "$bindir/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    # Under the sanitizer build a daemon's report lands in its log, not in an exit status the
    # test sees: any report fails the test.
    local reports
    reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$H_DIR"/coordinator.log "$H_DIR"/agents/*/agent.log 2>/dev/null || true)
    if [[ -n $reports ]]; then
        h_log "FAIL: sanitizer reports in: $reports"
        grep -h -A12 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $reports | head -60 >&2
        status=1
    fi
    if [[ $status -ne 0 ]]; then
        h_log "kept $H_DIR for inspection"
    else
        rm -rf "$H_DIR"
        [[ -n $pgdata && $pgdata != $H_DIR/* ]] && rm -rf "$(dirname "$pgdata")"
    fi
    exit "$status"
}

# h_add_operator NAME ROLE: a key pair and signing key for NAME, a vigilctl configuration
# ($H_DIR/NAME.yaml) and the operator itself, added by the test's admin. h_as NAME ARGS...:
# vigilctl as that operator.
h_add_operator() {
    "$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/$1.key" >/dev/null || h_fail "keygen for $1"
    h_write_ctl_config "$H_DIR/$1.yaml" "$H_DIR/$1.key"
    h_ctl operators add "$1" --role "$2" --public-key "$(h_key_public "$H_DIR/$1.key")" \
        --signing-key "$(sed -n 's/^signing-public-key: *"\(.*\)"/\1/p' "$H_DIR/$1.key.sign")" \
        >/dev/null || h_fail "operators add $1"
}
h_as() {
    local who=$1
    shift
    VIGIL_CONFIG="$H_DIR/$who.yaml" "$VIGIL_BUILD/vigilctl" "$@"
}
