#!/usr/bin/env bash
# vigil-agent-action's postgres and redis actions against real servers on loopback: the
# coordinator's own PostgreSQL and a Redis of this test's. The program is driven directly with
# a request on stdin, as vigil-agent-exec would, and run as an unprivileged user (postgres for
# the PostgreSQL actions: only that user reaches the private cluster's socket; nobody for
# Redis) when the test runs as root.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

ACTION=$VIGIL_BUILD/vigil-agent-action
[[ -x $ACTION ]] || h_fail "$ACTION is not built"
AS_PG=()
AS_NOBODY=()
if [[ $(id -u) == 0 ]]; then
    AS_PG=(runuser -u postgres --)
    AS_NOBODY=(runuser -u nobody --)
    # A copy those users can reach, as a package installs it: a build tree in a 0700 clone
    # under /root is not.
    install -d -m 0755 "$H_DIR/bin"
    install -m 0755 "$ACTION" "$H_DIR/bin/vigil-agent-action"
    ACTION=$H_DIR/bin/vigil-agent-action
fi

REDIS_PID=""
HOLE_PID=""
PSQL_PIDS=()
stop_servers() {
    local pid
    # The sleeping backends outlive their psql: end them on the server's side first.
    [[ -z $H_COORD_PID ]] ||
        h_sql "select pg_terminate_backend(pid) from pg_stat_activity where query like 'SELECT pg_sleep(60_)'" \
            >/dev/null 2>&1 || true
    for pid in "${PSQL_PIDS[@]}" "$HOLE_PID" "$REDIS_PID"; do
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PSQL_PIDS=() HOLE_PID="" REDIS_PID=""
}
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the coordinator
    stop_servers
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# must_have TEXT PATTERN WHAT: TEXT matches the extended regular expression PATTERN.
must_have() { grep -Eq -- "$2" <<<"$1" || h_fail "$3: no /$2/ in: $1"; }
must_not_have() { ! grep -Eq -- "$2" <<<"$1" || h_fail "$3: /$2/ in: $1"; }
# expect_rc WANT RC OUT WHAT
expect_rc() { [[ $2 == "$1" ]] || h_fail "$4: exit $2, expected $1: $3"; }

# A TCP port that accepts connections (the kernel's backlog) and never answers.
HOLE_PORT=$(h_free_port)
"${VIGIL_PYTHON:-/usr/bin/python3}" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
time.sleep(3600)' "$HOLE_PORT" &
HOLE_PID=$!
h_wait "the silent listener" 10 bash -c "exec 2>/dev/null; : </dev/tcp/127.0.0.1/$HOLE_PORT"

# ---- PostgreSQL ---------------------------------------------------------------------------
h_start_coordinator
pg_sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && pg_sock=$H_DIR/coord/pgsock
pg_sock=$(readlink -f "$pg_sock")
h_sql "create database svc" >/dev/null
h_sql 'create database "Svc Odd"' >/dev/null
STORE="host=$pg_sock port=5432 dbname=vigil user=vigil"
SVC="host=$pg_sock port=5432 dbname=svc user=vigil"
svc_sql() { psql -X -q -A -t -h "$pg_sock" -p 5432 -U vigil -d svc -v ON_ERROR_STOP=1 -c "$1"; }

# pg OP CONNINFO [KEY VALUE]...: the action's exit status and output (stdout and stderr, one
# pipe, as under the executor) in RC and OUT, its duration in whole seconds in ELAPSED;
# TIMEOUT_MS bounds it (default 20 s). SVC_VERBOSE=1 shows each run's output.
pg_run() {
    local op=$1 conninfo=$2
    shift 2
    printf '%s\0' kind postgres op "$op" action "test-$op" timeout_ms "${TIMEOUT_MS:-20000}" \
        target.name store target.address "$conninfo" target.password_file "" "$@" |
        "${AS_PG[@]}" "$ACTION" postgres "$op"
}
pg() {
    local start=$SECONDS
    h_capture OUT RC pg_run "$@"
    ELAPSED=$((SECONDS - start))
    [[ -z ${SVC_VERBOSE:-} ]] || printf -- '---- %s %s: exit %s in %ss\n%s\n' pg "$1" "$RC" "$ELAPSED" "$OUT" >&2
}

# psql_sleep DB SECONDS: a client running SELECT pg_sleep(SECONDS) in the background.
psql_sleep() {
    psql -X -q -h "$pg_sock" -p 5432 -U vigil -d "$1" -c "SELECT pg_sleep($2)" >/dev/null 2>&1 &
    PSQL_PIDS+=($!)
}
# active_pid QUERY [MIN_AGE_S]: the pid of the client backend running QUERY (at least MIN_AGE_S
# seconds), or nothing.
active_pid() {
    h_sql "select pid from pg_stat_activity where query = '$1' and state = 'active'
             and now() - query_start >= interval '${2:-0} s'"
}
has_active() { [[ -n $(active_pid "$@") ]]; }

# 1. terminate: only client backends of the database, only those older than the threshold.
psql_sleep svc 600
psql_sleep vigil 602 # as old, in another database: left alone with database=svc
h_wait "pg_sleep(600) active for 2.5 s" 20 has_active 'SELECT pg_sleep(600)' 2.5
h_wait "pg_sleep(602) active for 2.5 s" 20 has_active 'SELECT pg_sleep(602)' 2.5
psql_sleep svc 601 # young
h_wait "pg_sleep(601) active" 10 has_active 'SELECT pg_sleep(601)'
old=$(active_pid 'SELECT pg_sleep(600)')
young=$(active_pid 'SELECT pg_sleep(601)')
other=$(active_pid 'SELECT pg_sleep(602)')
pg terminate "$STORE" arg.older_than 2s arg.database svc
expect_rc 0 "$RC" "$OUT" "terminate"
must_have "$OUT" "^terminated pid=$old user=vigil database=svc age_s=[0-9]+ query=SELECT pg_sleep\(600\)$" "terminate account"
must_have "$OUT" "^terminated 1 backend active for more than 2s$" "terminate summary"
must_not_have "$OUT" "pid=($young|$other)[^0-9]" "terminate account"
gone() { [[ $(h_sql "select count(*) from pg_stat_activity where pid = $old") == 0 ]]; }
h_wait "the terminated backend gone from pg_stat_activity" 10 gone
[[ $(active_pid 'SELECT pg_sleep(601)') == "$young" ]] ||
    h_fail "the young pg_sleep(601) (pid $young) did not survive the terminate"
[[ $(active_pid 'SELECT pg_sleep(602)') == "$other" ]] ||
    h_fail "pg_sleep(602) in database vigil (pid $other) did not survive a terminate for database svc"
pg terminate "$STORE" arg.older_than 1h
expect_rc 0 "$RC" "$OUT" "terminate with nothing to do"
must_have "$OUT" "^terminated 0 backends active for more than 1h$" "terminate with nothing to do"
h_pass "terminate: the old backend terminated and named with its query; the young one and another database's kept; nothing to do is success"

# 2. analyze and reindex.
svc_sql "create table sessions (id serial primary key, created_at timestamptz not null)"
svc_sql "insert into sessions (created_at) select now() - interval '2 hours' from generate_series(1, 3);
         insert into sessions (created_at) select now() from generate_series(1, 2)"
pg analyze "$STORE" arg.database svc
expect_rc 0 "$RC" "$OUT" "analyze svc"
must_have "$OUT" "^analyzed database svc in [0-9.]+ s$" "analyze account"
analyzed() { [[ -n $(svc_sql "select last_analyze from pg_stat_user_tables where relname = 'sessions'") ]]; }
h_wait "sessions analyzed (pg_stat_user_tables.last_analyze)" 5 analyzed
pg analyze "$STORE"
expect_rc 0 "$RC" "$OUT" "analyze (the target's database)"
must_have "$OUT" "^analyzed database vigil in" "analyze account"
pg reindex "$STORE" arg.database svc
expect_rc 0 "$RC" "$OUT" "reindex svc"
must_have "$OUT" "^reindexed database svc in [0-9.]+ s$" "reindex account"
pg reindex "$STORE" arg.database "Svc Odd"
expect_rc 0 "$RC" "$OUT" "reindex of a database whose name needs quoting"
must_have "$OUT" 'REINDEX DATABASE "Svc Odd"' "reindex account"
h_pass "analyze and reindex"

# 3. statement: bound, in a transaction, only the old rows.
pg statement "$SVC" statement 'DELETE FROM sessions WHERE created_at < now() - $1::interval' \
    bind.count 1 bind.1 "1 hour"
expect_rc 0 "$RC" "$OUT" "statement"
must_have "$OUT" "^DELETE 3$" "statement account"
must_have "$OUT" "^committed$" "statement account"
[[ $(svc_sql "select count(*) from sessions") == 2 &&
    $(svc_sql "select count(*) from sessions where created_at < now() - interval '1 hour'") == 0 ]] ||
    h_fail "statement: expected the 2 new rows left, have: $(svc_sql 'select id, created_at from sessions')"
# A bind is a value, never SQL.
pg statement "$SVC" statement 'DELETE FROM sessions WHERE created_at < now() - $1::interval' \
    bind.count 1 bind.1 "1 hour'; DROP TABLE sessions; --"
expect_rc 1 "$RC" "$OUT" "statement with a malicious bind"
must_have "$OUT" "invalid input syntax for type interval" "statement with a malicious bind"
[[ $(svc_sql "select count(*) from sessions") == 2 ]] || h_fail "the malicious bind changed sessions"
h_pass "statement: DELETE 3 with a bound interval, the new rows kept; a bind is only a value"

# 4. failures: SQL error, unreachable, timeout, bad requests.
pg statement "$SVC" statement 'SELECT * FROM no_such_table' bind.count 0
expect_rc 1 "$RC" "$OUT" "statement on a missing table"
must_have "$OUT" 'ERROR: relation "no_such_table" does not exist' "SQL error"
must_have "$OUT" "^rolled back$" "SQL error"
wrong_port=$(h_free_port)
TIMEOUT_MS=3000 pg analyze "host=$pg_sock port=$wrong_port dbname=vigil user=vigil"
expect_rc 3 "$RC" "$OUT" "a wrong port"
must_have "$OUT" "cannot connect: connection to server on socket" "a wrong port"
((ELAPSED <= 3)) || h_fail "a wrong port took ${ELAPSED}s with timeout_ms 3000"
TIMEOUT_MS=1500 pg analyze "host=127.0.0.1 port=$HOLE_PORT dbname=vigil user=vigil sslmode=disable"
expect_rc 3 "$RC" "$OUT" "a server that never answers"
must_have "$OUT" "no answer within 1500 ms" "a server that never answers"
((ELAPSED <= 3)) || h_fail "a server that never answers: ${ELAPSED}s with timeout_ms 1500"
# statement_timeout comes from timeout_ms: the server gives up too.
TIMEOUT_MS=1500 pg statement "$SVC" statement 'SELECT pg_sleep(30)' bind.count 0
expect_rc 3 "$RC" "$OUT" "a statement longer than timeout_ms"
must_have "$OUT" "no answer within 1500 ms" "a statement longer than timeout_ms"
((ELAPSED <= 3)) || h_fail "a statement longer than timeout_ms took ${ELAPSED}s"
[[ $(h_sql "select count(*) from pg_stat_activity where query = 'SELECT pg_sleep(30)' and state = 'active'") == 0 ]] ||
    sleep 1
[[ $(h_sql "select count(*) from pg_stat_activity where query = 'SELECT pg_sleep(30)' and state = 'active'") == 0 ]] ||
    h_fail "the timed-out statement still runs on the server"
pg terminate "$STORE" arg.database svc
expect_rc 2 "$RC" "$OUT" "terminate without older_than"
must_have "$OUT" "the request has no arg.older_than" "a missing key"
pg terminate "$STORE" arg.older_than soon
expect_rc 2 "$RC" "$OUT" "terminate with older_than=soon"
pg statement "$SVC" statement 'SELECT $1::int' bind.count 1
expect_rc 2 "$RC" "$OUT" "a statement without its bind"
must_have "$OUT" "the request has no bind.1" "a missing bind"
h_capture OUT RC bash -c 'printf "%s\0" kind postgres op analyze | "$1" postgres analyze' _ "$ACTION"
expect_rc 2 "$RC" "$OUT" "a request without timeout_ms"
h_pass "postgres failures: SQL error exit 1, wrong port and a silent server exit 3 within the bound, missing keys exit 2"

# ---- Redis --------------------------------------------------------------------------------
REDIS_PORT=$(h_free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$H_DIR" --logfile "$H_DIR/redis.log" &
REDIS_PID=$!
REDIS_AUTH=()
rcli() { redis-cli -p "$REDIS_PORT" "${REDIS_AUTH[@]}" "$@"; }
redis_up() { rcli ping >/dev/null 2>&1; }
h_wait "redis answering" 10 redis_up
# rd OP ADDRESS PASSWORD_FILE [KEY VALUE]...: like pg.
rd_run() {
    local op=$1 address=$2 password_file=$3
    shift 3
    printf '%s\0' kind redis op "$op" action "test-$op" timeout_ms "${TIMEOUT_MS:-10000}" \
        target.name cache target.address "$address" target.password_file "$password_file" "$@" |
        "${AS_NOBODY[@]}" "$ACTION" redis "$op"
}
rd() {
    local start=$SECONDS
    h_capture OUT RC rd_run "$@"
    ELAPSED=$((SECONDS - start))
    [[ -z ${SVC_VERBOSE:-} ]] || printf -- '---- %s %s: exit %s in %ss\n%s\n' rd "$1" "$RC" "$ELAPSED" "$OUT" >&2
}
fill() {
    rcli -n 0 mset a 1 b 2 >/dev/null
    rcli -n 3 mset c 3 d 4 e 5 >/dev/null
}
fill
rd flushdb "127.0.0.1:$REDIS_PORT" "" arg.db 3
expect_rc 0 "$RC" "$OUT" "flushdb 3"
must_have "$OUT" "^before: db3 3 keys$" "flushdb account"
must_have "$OUT" "^after: db3 0 keys$" "flushdb account"
[[ $(rcli -n 3 dbsize) == 0 && $(rcli -n 0 dbsize) == 2 ]] ||
    h_fail "flushdb 3: db3 has $(rcli -n 3 dbsize) keys, db0 $(rcli -n 0 dbsize) (expected 0 and 2)"
fill
rd flushall "127.0.0.1:$REDIS_PORT" ""
expect_rc 0 "$RC" "$OUT" "flushall"
must_have "$OUT" "^before: db0 2 keys$" "flushall account"
must_have "$OUT" "^before: db3 3 keys$" "flushall account"
must_have "$OUT" "^flushed all databases$" "flushall account"
must_have "$OUT" "^after: no keys in any database$" "flushall account"
[[ $(rcli -n 0 dbsize) == 0 && $(rcli -n 3 dbsize) == 0 ]] || h_fail "flushall left keys"
h_pass "redis: flushdb empties its database only, flushall all of them"

rcli config set requirepass 's3cret pass' >/dev/null
REDIS_AUTH=(--no-auth-warning -a 's3cret pass')
fill
(umask 077 && printf 's3cret pass\n' >"$H_DIR/redis.pass" && printf 'wrong\n' >"$H_DIR/redis.wrong")
[[ ${#AS_NOBODY[@]} == 0 ]] || chown nobody "$H_DIR/redis.pass" "$H_DIR/redis.wrong"
rd flushdb "127.0.0.1:$REDIS_PORT" "$H_DIR/redis.pass" arg.db 0
expect_rc 0 "$RC" "$OUT" "flushdb with the password file"
[[ $(rcli -n 0 dbsize) == 0 && $(rcli -n 3 dbsize) == 3 ]] || h_fail "flushdb 0 with a password"
rd flushall "127.0.0.1:$REDIS_PORT" "$H_DIR/redis.wrong"
expect_rc 1 "$RC" "$OUT" "a wrong password"
must_have "$OUT" "auth: AUTH refused: WRONGPASS" "a wrong password"
rd flushall "127.0.0.1:$REDIS_PORT" ""
expect_rc 1 "$RC" "$OUT" "no password where one is required"
must_have "$OUT" "auth: INFO keyspace refused: NOAUTH" "no password"
[[ $(rcli -n 3 dbsize) == 3 ]] || h_fail "a refused flushall flushed"
rd flushdb "127.0.0.1:$REDIS_PORT" "$H_DIR/redis.pass" arg.db 99
expect_rc 1 "$RC" "$OUT" "flushdb of a database out of range"
must_have "$OUT" "SELECT refused: ERR DB index is out of range" "flushdb 99"
TIMEOUT_MS=1500 rd flushall "127.0.0.1:$HOLE_PORT" ""
expect_rc 3 "$RC" "$OUT" "redis that never answers"
must_have "$OUT" "no answer within 1500 ms" "redis that never answers"
((ELAPSED <= 3)) || h_fail "redis that never answers: ${ELAPSED}s with timeout_ms 1500"
rd flushall "127.0.0.1:$(h_free_port)" ""
expect_rc 3 "$RC" "$OUT" "redis on a wrong port"
rd flushdb "127.0.0.1:$REDIS_PORT" "$H_DIR/redis.pass"
expect_rc 2 "$RC" "$OUT" "flushdb without db"
must_have "$OUT" "the request has no arg.db" "flushdb without db"
h_pass "redis: password file, wrong or missing password exit 1 with auth, out-of-range db exit 1, silent server and wrong port exit 3 in time, missing key exit 2"
