#!/usr/bin/env bash
# The dead-man's switch (watchdog.url): a healthy coordinator calls the URL every interval; a
# coordinator that stops (SIGSTOP, as a hang looks from outside) stops calling, and calls again
# once it runs; a URL that fails is logged once and counted, not retried in a loop.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

SINK_PID=""
stop_sink() {
    local status=$?
    [[ -z $SINK_PID ]] || kill "$SINK_PID" 2>/dev/null || true
    [[ -z ${H_COORD_PID:-} ]] || kill -CONT "$H_COORD_PID" 2>/dev/null || true
    (exit "$status")
    h_cleanup
}
trap stop_sink EXIT
h_start_sink

h_start_coordinator "watchdog:
  url: \"http://127.0.0.1:$(cat "$H_DIR/sink.port")/ping/vigil\"
  interval: 1s"
calls() { grep -c '"path": "/ping/vigil"' "$SINK_LOG" || true; }
three() { (($(calls) >= 3)); }
h_wait "three watchdog calls" 10 three
grep -q '"method": "GET"' "$SINK_LOG" || h_fail "the watchdog does not GET: $(head -1 "$SINK_LOG")"
h_pass "a healthy coordinator calls the watchdog URL every second"

# Stopped (what a hung process looks like from outside): the calls stop.
kill -STOP "$H_COORD_PID"
sleep 1.5 # a call under way when it stopped may still land
before=$(calls)
sleep 4
after=$(calls)
kill -CONT "$H_COORD_PID"
((after == before)) || h_fail "$((after - before)) watchdog calls while the coordinator was stopped"
more() { (($(calls) > after)); }
h_wait "watchdog calls again once the coordinator runs" 10 more
h_pass "a stopped coordinator stops calling, and calls again when it runs"

# The receiver answers 500: logged once, counted, the calls go on.
echo 500 >"$H_DIR/sink.mode"
failed() { [[ $(h_metric 'vigil_watchdog_calls_total{result="failed"}') -ge 2 ]]; }
h_wait "failed watchdog calls counted" 10 failed
[[ $(grep -c "watchdog: .* failed" "$H_DIR/coordinator.log") == 1 ]] ||
    h_fail "a failing watchdog URL should be logged once: $(grep "watchdog" "$H_DIR/coordinator.log")"
echo 200 >"$H_DIR/sink.mode"
h_wait "the watchdog URL answers again (logged)" 10 grep -q "watchdog: .* answers again" "$H_DIR/coordinator.log"
[[ $(h_metric 'vigil_watchdog_calls_total{result="ok"}') -ge 3 ]] || h_fail "ok calls not counted"
h_pass "a failing watchdog URL is logged once and counted; its recovery logged"

# A watchdog URL that is not http(s) is refused at start, with its key.
out=$(sed 's|url: "http://|url: "ftp://|' "$H_DIR/coordinator.yaml" >"$H_DIR/bad.yaml" &&
    "$VIGIL_BUILD/vigil-coordinator" -n -c "$H_DIR/bad.yaml" 2>&1) && h_fail "ftp:// accepted: $out"
grep -q '"watchdog.url": must start with http:// or https://' <<<"$out" || h_fail "refusal: $out"
h_pass "watchdog"
