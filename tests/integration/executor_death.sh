#!/usr/bin/env bash
# An agent whose privileged executor died cannot start another one (its network side has no
# privileges left), so it must not carry on looking healthy: it reports agent.executor.up = 0,
# gets its spool acknowledged and exits with 75 (EX_TEMPFAIL) for its supervisor to restart it
# whole. The shipped executor-down runbook opens a SEV2 incident for that node, and the
# restarted agent, same key and nothing left in its spool, has an executor again.
source "$(dirname "$0")/../lib/harness.sh"
h_setup
h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\""
quiet=$'collectors:\n  host: {interval: 0s}\n  netstat: {interval: 0s}'
h_start_agent node-x "$quiet"
agent_pid=${H_AGENT_PIDS[node-x]}

executor_up() { # the latest agent.executor.up of node-x
    h_ctl signals -o json --node node-x --name agent.executor.up | jq -r '.[0].value // empty'
}
is_up() { [[ $(executor_up) == 1 ]]; }
h_wait "node-x reports its executor up" 30 is_up

executor_pid() { # the agent's child that runs vigil-agent-exec
    local c
    for c in $(pgrep -P "$agent_pid"); do
        [[ $(readlink "/proc/$c/exe" 2>/dev/null) == */vigil-agent-exec ]] && echo "$c"
    done
}
exec_pid=$(executor_pid)
[[ -n $exec_pid ]] || h_fail "no vigil-agent-exec child of the agent (pid $agent_pid)"
h_log "agent pid=$agent_pid executor pid=$exec_pid"

# kill_executor WHAT TIMEOUT: SIGKILL to the executor, then the agent's exit: sets rc and took.
gone() { ! kill -0 "$agent_pid" 2>/dev/null; }
kill_executor() {
    local killed_at=$SECONDS
    kill -KILL "$exec_pid"
    h_wait "$1" "$2" gone
    set +e
    wait "$agent_pid"
    rc=$?
    set -e
    took=$((SECONDS - killed_at))
    unset "H_AGENT_PIDS[node-x]"
}

kill_executor "the agent exits after its executor died" 15
h_log "agent exited with $rc after $took s"
[[ $rc == 75 ]] || h_fail "the agent exited with $rc, expected 75 (executor lost)"
((took <= 10)) || h_fail "the agent took $took s to exit"
log=$H_DIR/agents/node-x/agent.log
grep -q "executor.*does not answer" "$log" || h_fail "the agent did not log why it exits"
grep -q "spool flushed" "$log" || h_fail "the agent did not get its spool acknowledged first"
h_pass "the agent exits 75 within seconds when its executor dies"

[[ $(executor_up) == 0 ]] || h_fail "agent.executor.up = 0 did not reach the coordinator (latest: $(executor_up))"
opened() {
    h_ctl incidents -o json | jq -e '[.[] | select(.runbook == "executor-down" and
        .scope == ["node-x"] and .severity == "SEV2")] | length == 1' >/dev/null
}
h_wait "an executor-down incident for node-x" 15 opened
h_log "$(h_ctl incidents | grep -i "executor down")"
h_pass "agent.executor.up = 0 was stored and opened a SEV2 executor-down incident for node-x"

# What a supervisor does: start it again. Same key, nothing was left in the spool.
id_before=$(h_agent_id node-x)
h_start_agent node-x "$quiet"
h_wait "the restarted agent reports its executor up" 30 is_up
[[ $(h_agent_id node-x) == "$id_before" ]] || h_fail "the restarted agent has another id"
grep "spool .*messages waiting" "$log" | tail -1 | grep ": 0 messages waiting" >/dev/null ||
    h_fail "the restarted agent found its spool not empty: $(grep "messages waiting" "$log" | tail -1)"
h_pass "the restarted agent has an executor again"

# The wait for acknowledgements is bounded: with the coordinator down the agent still exits 75
# within the flush time (5 s) after noticing, and its spool keeps agent.executor.up = 0 for the
# next start, which delivers it.
agent_pid=${H_AGENT_PIDS[node-x]}
id=$(h_agent_id node-x)
h_stop_coordinator
exec_pid=$(executor_pid)
[[ -n $exec_pid ]] || h_fail "no vigil-agent-exec child of the restarted agent"
kill_executor "the agent exits without a coordinator" 20
h_log "without a coordinator: exit $rc after $took s"
[[ $rc == 75 ]] || h_fail "without a coordinator the agent exited with $rc, expected 75"
((took <= 12)) || h_fail "without a coordinator the agent took $took s"
grep -q "spool not flushed in 5 s" "$log" || h_fail "the agent did not say what it left in its spool"

zeros() { h_sql "select count(*) from signals where agent_id = '$id' and name = 'agent.executor.up' and value = 0"; }
h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\""
[[ $(zeros) == 1 ]] || h_fail "expected one agent.executor.up = 0 stored so far, found $(zeros)"
h_start_agent node-x "$quiet"
delivered() { [[ $(zeros) == 2 ]]; }
h_wait "the restarted agent delivers the spooled agent.executor.up = 0" 30 delivered
h_wait "the restarted agent reports its executor up" 30 is_up
h_pass "with the coordinator away the agent exits in bounded time and its spool delivers later"
