#!/usr/bin/env bash
# Probes end to end against real servers on loopback: nginx (ok, 500, slow, refused, TLS),
# the coordinator's own PostgreSQL (a long-running query), and Redis (evictions, hit rate,
# then killed). What the agent measured is read back with `vigilctl signals`.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

# The servers this test starts are stopped before the harness's own cleanup, which keeps the
# exit status it is given.
NGINX_PID=""
REDIS_PID=""
PSQL_PID=""
stop_servers() {
    local pid
    for pid in "$PSQL_PID" "$NGINX_PID" "$REDIS_PID"; do
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PSQL_PID="" NGINX_PID="" REDIS_PID=""
}
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the agent and coordinator
    stop_servers
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- nginx --------------------------------------------------------------------------------
NGINX_PORT=$(h_free_port)
TLS_PORT=$(h_free_port)
REFUSED_PORT=$(h_free_port)
ngx=$H_DIR/nginx
mkdir -p "$ngx/www" "$ngx/tmp" "$ngx/logs"
head -c 12288 /dev/zero | tr '\0' 'x' >"$ngx/www/slow"
# A certificate that expires in 30 days, for tls_days_left.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -keyout "$ngx/key.pem" -out "$ngx/cert.pem" 2>/dev/null || h_fail "openssl req"
h_nginx_conf "$ngx" "$ngx/logs/access.log" "    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /healthz { return 200 \"ok\\n\"; }
        location = /fail { return 500; }
        location = /slow { root $ngx/www; limit_rate 4k; }
    }
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $ngx/cert.pem;
        ssl_certificate_key $ngx/key.pem;
        location / { return 200 \"ok\\n\"; }
    }"
/usr/sbin/nginx -p "$ngx" -c "$ngx/nginx.conf" >>"$ngx/logs/stderr.log" 2>&1 &
NGINX_PID=$!
nginx_up() {
    kill -0 "$NGINX_PID" 2>/dev/null || h_fail "nginx exited: $(tail -5 "$ngx/logs/error.log" "$ngx/logs/stderr.log")"
    curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/healthz"
}
h_wait "nginx answering" 10 nginx_up

# ---- Redis --------------------------------------------------------------------------------
REDIS_PORT=$(h_free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --maxmemory 2mb --maxmemory-policy allkeys-lru --daemonize no \
    --dir "$H_DIR" --logfile "$H_DIR/redis.log" &
REDIS_PID=$!
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
redis_up() { rcli ping >/dev/null 2>&1; }
h_wait "redis answering" 10 redis_up

# ---- PostgreSQL: the coordinator's own cluster --------------------------------------------
h_start_coordinator
pg_sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && pg_sock=$H_DIR/coord/pgsock
pg_sock=$(readlink -f "$pg_sock")
h_sql "select 1" >/dev/null || h_fail "the coordinator's PostgreSQL does not answer"

agent_yaml=$(cat <<YAML
collectors:
  http:
    interval: 1s
    timeout: 4s
    targets:
      - {name: ok, url: "http://127.0.0.1:$NGINX_PORT/healthz"}
      - {name: fail, url: "http://127.0.0.1:$NGINX_PORT/fail"}
      - {name: slow, url: "http://127.0.0.1:$NGINX_PORT/slow"}
      - {name: down, url: "http://127.0.0.1:$REFUSED_PORT/"}
      - {name: tls, url: "https://127.0.0.1:$TLS_PORT/", tls_verify: false}
      - {name: tls-strict, url: "https://127.0.0.1:$TLS_PORT/"}
  postgres:
    interval: 1s
    timeout: 3s
    long_running: 2s
    targets:
      - {name: store, conninfo: "host=$pg_sock port=5432 dbname=vigil user=vigil"}
  redis:
    interval: 1s
    timeout: 2s
    targets:
      - {name: cache, address: "127.0.0.1:$REDIS_PORT"}
YAML
)
"$VIGIL_BUILD/vigil-agent" -n -c <(printf 'coordinator: {public_key: "%s"}\n%s\n' "$H_COORD_PUB" "$agent_yaml") >/dev/null ||
    h_fail "vigil-agent does not accept the probe configuration"
h_start_agent probes "$agent_yaml"

# sig NAME TARGET: the latest sample of a series from this agent (JSON object, or null).
sig() {
    h_ctl signals -o json --node probes --name "$1" |
        jq -c --arg t "$2" '[.[] | select(.labels.target == $t)] | sort_by(.ts) | last'
}
# has NAME TARGET JQ-CONDITION: the latest sample satisfies the condition.
has() { sig "$1" "$2" | jq -e "$3" >/dev/null; }
# has_error TARGET PREFIX REASON: an error series for the reason is at 1.
has_error() {
    h_ctl signals -o json --node probes --name "$1.error" |
        jq -e --arg t "$2" --arg r "$3" 'any(.[]; .labels.target == $t and .labels.reason == $r and .value == 1)' >/dev/null
}

# collect_and_check KIND PATTERN: vigilctl collect of KIND stores an artifact whose stored hash
# equals sha256sum of the bytes fetched back, and whose text matches PATTERN.
collect_and_check() {
    local out id f=$H_DIR/evidence-$1.txt
    out=$(h_ctl collect --node probes "$1" -o json) || h_fail "collect $1: $out"
    id=$(jq -r '.[0].id' <<<"$out")
    [[ $id =~ ^[0-9]+$ ]] || h_fail "collect $1: no id in $out"
    h_ctl evidence get "$id" --out "$f" || h_fail "evidence get $id"
    [[ $(sha256sum "$f" | cut -d' ' -f1) == $(h_sql "select encode(sha256, 'hex') from evidence where id = $id") ]] ||
        h_fail "collect $1: the stored hash differs from the fetched bytes"
    grep -Eq "$2" "$f" || h_fail "collect $1: the artifact lacks /$2/: $(head -c 600 "$f")"
}

# ---- HTTP ---------------------------------------------------------------------------------
h_wait "http ok up with status 200" 30 has http.up ok '.value == 1'
has http.status ok '.value == 200' || h_fail "ok: status $(sig http.status ok)"
h_wait "http fail down" 10 has http.up fail '.value == 0'
has http.status fail '.value == 500' || h_fail "fail: status $(sig http.status fail)"
has_error http fail "status 500" || h_fail "fail: no http.error{reason=\"status 500\"}"
h_wait "http slow measured" 15 has http.time_ms slow '.value >= 2000'
has http.time_ms slow '.state == "warning" or .state == "critical"' ||
    h_fail "slow: time without a warning state: $(sig http.time_ms slow)"
has http.up slow '.value == 1' || h_fail "slow: not up although it answered within the timeout: $(sig http.up slow)"
h_wait "http down refused" 10 has http.up down '.value == 0'
has_error http down refused || h_fail "down: no http.error{reason=refused}: $(h_ctl signals --node probes --name http.error)"
h_wait "https up without verification" 10 has http.up tls '.value == 1'
has http.tls_days_left tls '.value > 29 and .value <= 30' ||
    h_fail "tls: days left $(sig http.tls_days_left tls), the certificate expires in 30 days"
h_wait "https with verification refuses a self-signed certificate" 10 has_error http tls-strict tls
h_pass "http: up, status, slow response with its threshold state, refused, TLS expiry and verification"

# ---- PostgreSQL ---------------------------------------------------------------------------
psql -X -q -h "$pg_sock" -p 5432 -U vigil -d vigil -c "select pg_sleep(60)" >/dev/null 2>&1 &
PSQL_PID=$!
h_wait "pg up" 20 has pg.up store '.value == 1'
has pg.connections store '.value > 0' || h_fail "pg.connections: $(sig pg.connections store)"
has pg.max_connections store '.value > 0' || h_fail "pg.max_connections: $(sig pg.max_connections store)"
has pg.connections_used_pct store '.value > 0 and .value <= 100' ||
    h_fail "pg.connections_used_pct: $(sig pg.connections_used_pct store)"
# The sleep passes long_running (2 s) within about 3 s; two 1 s intervals on top.
h_wait "pg.long_running counts the sleeping query" 8 has pg.long_running store '.value >= 1'
has pg.longest_query_s store '.value >= 2' || h_fail "pg.longest_query_s: $(sig pg.longest_query_s store)"
has pg.active store '.value >= 1' || h_fail "pg.active: $(sig pg.active store)"
collect_and_check postgres 'pg_sleep\(60\)'
# The coordinator's cluster has no pg_stat_statements: the evidence says so in one line.
grep -q '^pg_stat_statements is not installed in database vigil$' "$H_DIR/evidence-postgres.txt" ||
    h_fail "postgres evidence: no line about pg_stat_statements: $(tail -c 600 "$H_DIR/evidence-postgres.txt")"
h_pass "postgres: up, connections, long-running query; evidence shows the query"

# ---- Redis --------------------------------------------------------------------------------
# 20000 values of 200 bytes do not fit in 2 MiB: LRU evicts.
awk 'BEGIN { v = sprintf("%200s", ""); gsub(/ /, "x", v);
             for (i = 0; i < 20000; i++) printf "SET key:%d %s\r\n", i, v }' |
    rcli --pipe >/dev/null || h_fail "filling redis"
for i in $(seq 1 20); do printf 'GET key:19999\r\nGET missing:%d\r\n' "$i"; done |
    rcli --pipe >/dev/null || h_fail "reading redis"
[[ $(rcli info stats | sed -n 's/^evicted_keys:\([0-9]*\).*/\1/p') -gt 0 ]] || h_fail "redis evicted nothing"
h_wait "redis evictions seen" 10 has redis.evicted_keys cache '.value > 0'
has redis.up cache '.value == 1' || h_fail "redis.up: $(sig redis.up cache)"
has redis.ping_ms cache '.value >= 0' || h_fail "redis.ping_ms: $(sig redis.ping_ms cache)"
has redis.mem_used_pct cache '.value > 0' || h_fail "redis.mem_used_pct: $(sig redis.mem_used_pct cache)"
has redis.maxmemory_bytes cache '.value == 2097152' || h_fail "redis.maxmemory_bytes: $(sig redis.maxmemory_bytes cache)"
has redis.clients cache '.value >= 1' || h_fail "redis.clients: $(sig redis.clients cache)"
# The hit rate covers the lookups of the last interval: the cycle after the GETs reports it.
h_wait "redis hit rate of the GETs" 10 has redis.hit_rate cache '.value >= 0 and .value <= 100'
collect_and_check redis '^evicted_keys:[1-9]'

kill -TERM "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
REDIS_PID=""
h_wait "redis down after it stopped" 10 has redis.up cache '.value == 0'
reason=$(h_ctl signals -o json --node probes --name redis.error |
    jq -r '[.[] | select(.labels.target == "cache" and .value == 1)] | .[0].labels.reason // empty')
[[ -n $reason ]] || h_fail "redis down without a redis.error reason"
# Everything else keeps reporting while Redis is gone (ts: ISO 8601 UTC, ordered as text).
before=$(sig http.up ok | jq -r '.ts')
sleep 2.5
after=$(sig http.up ok | jq -r '.ts')
[[ $after > $before ]] || h_fail "http probes stopped reporting while redis was down ($before, then $after)"
h_pass "redis: ping, evictions, memory, clients, hit rate; down with reason \"$reason\" when stopped"
