#!/usr/bin/env bash
# The coordinator's database login cannot rewrite the record (docs/operations.md, "Database
# roles"). The private cluster makes two roles: vigil_owner owns every object and runs the
# migrations and the maintenance; vigil_coordinator, the login of every other connection, owns
# nothing and is no superuser. Logged in as vigil_coordinator with its own password file, the
# ways around the append-only triggers are refused (session_replication_role, ALTER TABLE ...
# DISABLE TRIGGER, UPDATE, DELETE, TRUNCATE of the record), while appending works. Passwords are
# required for both roles; `vigil-coordinator -n` warns about a login with more rights than it
# needs; a cluster whose objects a superuser owns (made before the roles) is taken over at start.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator

sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
[[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
sock=$(readlink -f "$sock")
RUNTIME_PASS=$H_DIR/coord/pg-coordinator.pgpass
OWNER_PASS=$H_DIR/coord/pg-owner.pgpass
for f in "$RUNTIME_PASS" "$OWNER_PASS"; do
    [[ -f $f ]] || h_fail "no password file $f"
    [[ $(stat -c %a "$f") == 600 ]] || h_fail "$f is mode $(stat -c %a "$f"), not 600"
done
as_role() { # as_role ROLE PASSFILE SQL
    psql -X -q -A -t -v ON_ERROR_STOP=1 \
        "host=$sock port=5432 dbname=vigil user=$1 passfile=$2" -c "$3" 2>&1
}

# ---- who is connected as whom ----------------------------------------------------------------
roles=$(h_sql "select rolname, rolsuper, rolcreaterole, rolreplication, rolbypassrls
               from pg_roles where rolname in ('vigil_owner', 'vigil_coordinator') order by 1")
[[ $roles == $'vigil_coordinator|f|f|f|f\nvigil_owner|f|f|f|f' ]] ||
    h_fail "the roles are not plain logins: $roles"
h_wait "the maintenance connection" 20 bash -c "[[ \$(psql -X -A -t -h '$sock' -p 5432 -U vigil -d vigil -c \"select count(*) from pg_stat_activity where application_name = 'vigil-coordinator-maintenance'\") -ge 1 ]]"
who=$(h_sql "select application_name || '=' || usename from pg_stat_activity
             where application_name like 'vigil-coordinator%' group by 1 order by 1")
grep -qx "vigil-coordinator=vigil_coordinator" <<<"$who" || h_fail "the main connection: $who"
grep -qx "vigil-coordinator-maintenance=vigil_owner" <<<"$who" || h_fail "maintenance: $who"
if grep -v -e "-maintenance=" <<<"$who" | grep -v "=vigil_coordinator$" >/dev/null; then
    h_fail "a running connection is not vigil_coordinator: $who"
fi
owners=$(h_sql "select distinct pg_get_userbyid(relowner) from pg_class c
                join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'")
[[ $owners == vigil_owner ]] || h_fail "objects owned by: $owners"
h_pass "the coordinator runs as vigil_coordinator, maintenance as vigil_owner, who owns everything"

# ---- the ways around the triggers, as the coordinator's login --------------------------------
out=$(as_role vigil_coordinator "$RUNTIME_PASS" \
    "insert into audit_log (actor, action, subject, detail) values ('test', 'test.append', 'db_roles', 'appending works') returning id") ||
    h_fail "the coordinator's role cannot append to the audit log: $out"
refused() { # refused LABEL SQL PATTERN
    local out
    if out=$(as_role vigil_coordinator "$RUNTIME_PASS" "$2"); then
        h_fail "$1 was allowed to vigil_coordinator: $out"
    fi
    grep -E "$3" <<<"$out" >/dev/null || h_fail "$1: unexpected refusal: $out"
}
refused "session_replication_role" "set session_replication_role = replica" \
    'permission denied to set parameter "session_replication_role"'
refused "disabling the vault's trigger" "alter table evidence disable trigger evidence_append_only" \
    'must be owner of table evidence'
refused "disabling every trigger of the audit log" "alter table audit_log disable trigger all" \
    'must be owner of table audit_log'
refused "rewriting the audit log" "update audit_log set detail = 'rewritten'" \
    'permission denied for table audit_log'
refused "deleting the newest timeline rows" "delete from incident_events where id > 0" \
    'permission denied for table incident_events'
refused "truncating the chain" "truncate chain_links" 'permission denied for table chain_links'
refused "rewriting a command request" "update command_requests set node = 'elsewhere'" \
    'permission denied for table command_requests'
refused "removing a command report" "delete from command_reports" \
    'permission denied for table command_reports'
refused "changing an incident in place" "update incidents set severity = 4" \
    'permission denied for table incidents'
refused "rewriting an incident's history" "update incident_states set severity = 4" \
    'permission denied for table incident_states'
refused "becoming the owner" "set role vigil_owner" 'permission denied to set role'
refused "dropping the vault" "drop table evidence" 'must be owner of table evidence'
h_pass "as vigil_coordinator: appending works; triggers, UPDATE, DELETE, TRUNCATE, SET ROLE refused"

# ---- authentication: each role by its own password -------------------------------------------
printf '*:*:*:vigil_coordinator:%s\n' "$(openssl rand -hex 24)" >"$H_DIR/wrong.pgpass"
chmod 600 "$H_DIR/wrong.pgpass"
out=$(as_role vigil_coordinator "$H_DIR/wrong.pgpass" "select 1") &&
    h_fail "a wrong password was accepted: $out"
grep 'password authentication failed for user "vigil_coordinator"' <<<"$out" >/dev/null ||
    h_fail "wrong password: $out"
out=$(as_role vigil_owner "$RUNTIME_PASS" "select 1") && h_fail "the coordinator's file let in the owner: $out"
out=$(as_role vigil_owner "$OWNER_PASS" "select current_user") || h_fail "owner login: $out"
[[ $out == vigil_owner ]] || h_fail "owner login: $out"
# The superuser is only for the OS users of the coordinator and the server (peer).
if id nobody >/dev/null 2>&1; then
    out=$(runuser -u nobody -- psql -X -q -A -t -h "$sock" -p 5432 -U vigil -d vigil -c "select 1" 2>&1) &&
        h_fail "another OS user logged in as the superuser: $out"
    # (the socket's directory may already keep nobody out: refused either way)
    grep -E 'Peer authentication failed for user "vigil"|Permission denied' <<<"$out" >/dev/null ||
        h_fail "superuser as nobody: $out"
fi
h_pass "each role needs its own password; the superuser is refused to other OS users"

# ---- vigil-coordinator -n on an external store -----------------------------------------------
check() { # check URL [OWNER_URL]: -n's output (stdout and stderr)
    sed -e "s|^state_dir: .*|state_dir: \"$H_DIR/check\"|" "$H_DIR/coordinator.yaml" >"$H_DIR/check.yaml"
    printf 'store:\n  url: "%s"\n  owner_url: "%s"\n' "$1" "${2:-}" >>"$H_DIR/check.yaml"
    "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/check.yaml" 2>&1
}
out=$(check "host=$sock port=5432 dbname=vigil user=vigil") || h_fail "-n failed: $out"
grep -E "warning: store.url's login has more rights than the running coordinator needs \(superuser, .*owns [0-9]+ tables, DELETE/TRUNCATE/UPDATE on 1[0-9] tables of the record \(audit_log " <<<"$out" >/dev/null ||
    h_fail "-n with the superuser gave no warning: $out"
out=$(check "host=$sock port=5432 dbname=vigil user=vigil_owner passfile=$OWNER_PASS") || h_fail "-n failed: $out"
grep -E "more rights than the running coordinator needs \(owns [0-9]+ tables, DELETE/TRUNCATE/UPDATE on 1[0-9] tables of the record" <<<"$out" >/dev/null ||
    h_fail "-n with the owner gave no warning: $out"
out=$(check "host=$sock port=5432 dbname=vigil user=vigil_coordinator passfile=$RUNTIME_PASS") || h_fail "-n failed: $out"
grep -x "store: the coordinator's login holds no more rights than it needs" <<<"$out" >/dev/null ||
    h_fail "-n with the coordinator's role: $out"
h_pass "-n names the excess rights of the superuser and the owner, and none for vigil_coordinator"

# ---- an older cluster: objects the superuser owns are taken over at start --------------------
h_sql "alter table audit_log owner to vigil; alter function vigil_refuse_change() owner to vigil" >/dev/null
[[ $(h_sql "select pg_get_userbyid(relowner) from pg_class where relname = 'audit_log'") == vigil ]] ||
    h_fail "the test could not hand audit_log to the superuser"
# Killed, its cluster keeps running and the next start adopts it.
h_kill_coordinator
h_start_coordinator
owners=$(h_sql "select distinct pg_get_userbyid(relowner) from pg_class c
                join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'
                union select distinct pg_get_userbyid(proowner) from pg_proc p
                join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'")
[[ $owners == vigil_owner ]] || h_fail "after a restart, objects owned by: $owners"
refused "updating the audit log after the takeover" "update audit_log set detail = 'x'" \
    'permission denied for table audit_log'
grep "more rights than it needs" "$H_DIR/coordinator.log" >/dev/null &&
    h_fail "the coordinator warned about its own role: $(grep 'more rights' "$H_DIR/coordinator.log")"
h_pass "a superuser's objects are the owner role's again after a restart"
