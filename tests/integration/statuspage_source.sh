#!/usr/bin/env bash
# A dependency's public status page as a detection source: the http probe with
# `statuspage: true` reads Atlassian Statuspage v2 status.json and summary.json served from
# files (python3 -m http.server), the signals are read back with `vigilctl signals`, and a
# runbook symptom on http.statuspage.indicator opens an incident when the vendor says "major".
source "$(dirname "$0")/../lib/harness.sh"
h_setup

WWW_PID=""
on_exit() {
    local status=$?
    set +e # a failing run must still reach h_cleanup, which stops the agent and coordinator
    if [[ -n $WWW_PID ]]; then
        kill -TERM "$WWW_PID" 2>/dev/null
        wait "$WWW_PID" 2>/dev/null
    fi
    (exit "$status") # h_cleanup reads the exit status from $?
    h_cleanup
}
trap on_exit EXIT

# ---- The vendor's status page: files, rewritten atomically ----------------------------------
WWW=$H_DIR/www
mkdir -p "$WWW/api/v2"
page() { # page FILE JSON: the file the server answers with from now on
    printf '%s\n' "$2" >"$WWW/api/v2/.$1.tmp"
    mv -f "$WWW/api/v2/.$1.tmp" "$WWW/api/v2/$1"
}
status_json() { # status_json INDICATOR
    page status.json "{\"page\": {\"id\": \"vnd\", \"name\": \"Vendor\"},
  \"status\": {\"indicator\": \"$1\", \"description\": \"whatever the vendor says\"}}"
}
status_json none
page summary.json '{"page": {"id": "vnd", "name": "Vendor"},
  "status": {"indicator": "major", "description": "Partial System Outage"},
  "components": [
    {"id": "a", "name": "API", "status": "operational"},
    {"id": "b", "name": "Web", "status": "partial_outage"},
    {"id": "c", "name": "Search", "status": "degraded_performance"},
    {"id": "d", "name": "Billing", "status": "major_outage"},
    {"id": "e", "name": "Old", "status": "under_maintenance"}],
  "incidents": [], "scheduled_maintenances": []}'

# A free port may be taken by a test running beside this one before the server binds it: then
# the server exits at once, and it starts again on another port.
www_up() { curl -fsS -o /dev/null "http://127.0.0.1:$WWW_PORT/api/v2/status.json" 2>/dev/null; }
for attempt in 1 2 3 4 5; do
    WWW_PORT=$(h_free_port)
    (cd "$WWW" && exec "${VIGIL_PYTHON:-/usr/bin/python3}" -m http.server --bind 127.0.0.1 "$WWW_PORT") \
        >"$H_DIR/www.log" 2>&1 &
    WWW_PID=$!
    for _ in $(seq 100); do
        www_up && break 2
        kill -0 "$WWW_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$WWW_PID" 2>/dev/null || true
    wait "$WWW_PID" 2>/dev/null || true
    WWW_PID=""
    h_log "http.server on port $WWW_PORT did not answer (attempt $attempt): $(tail -1 "$H_DIR/www.log")"
done
[[ -n $WWW_PID ]] || h_fail "http.server would not start: $(tail -5 "$H_DIR/www.log")"

# ---- A runbook on the vendor's indicator ----------------------------------------------------
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/vendor-outage.yaml" <<'EOF'
id: vendor-outage
title: A dependency reports an outage
severity: SEV3
reopen_window: 0s
symptoms:
  - {id: vendor-major, signal: http.statuspage.indicator, labels: {target: vendor}, above: 1, scope: any}
EOF
h_start_coordinator "runbooks:
  dir: \"$RB\""

agent_yaml=$(cat <<YAML
collectors:
  host: {interval: 0s}
  netstat: {interval: 0s}
  http:
    interval: 1s
    timeout: 2s
    targets:
      - {name: vendor, url: "http://127.0.0.1:$WWW_PORT/api/v2/status.json", statuspage: true}
      - {name: vendor-parts, url: "http://127.0.0.1:$WWW_PORT/api/v2/summary.json", statuspage: true}
      - {name: plain, url: "http://127.0.0.1:$WWW_PORT/api/v2/status.json"}
YAML
)
"$VIGIL_BUILD/vigil-agent" -n -c <(printf 'coordinator: {public_key: "%s"}\n%s\n' "$H_COORD_PUB" "$agent_yaml") >/dev/null ||
    h_fail "vigil-agent does not accept statuspage: true"
h_capture out rc "$VIGIL_BUILD/vigil-agent" -n -c <(printf 'coordinator: {public_key: "%s"}\n%s\n' \
    "$H_COORD_PUB" "${agent_yaml//statuspage: true/statuspage: maybe}")
[[ $rc != 0 && $out == *statuspage* ]] || h_fail "statuspage: maybe was not refused clearly: $out"
h_start_agent probe "$agent_yaml"

# latest NAME TARGET [COMPONENT]: the newest sample of the series (JSON object, or null).
latest() {
    h_ctl signals -o json --node probe --name "$1" |
        jq -c --arg t "$2" --arg c "${3:-}" \
            '[.[] | select(.labels.target == $t and ($c == "" or .labels.component == $c))] | sort_by(.ts) | last'
}
is_value() { latest "$1" "$2" "${4:-}" | jq -e --argjson v "$3" '. != null and .value == $v' >/dev/null; }
error_is() { # error_is TARGET REASON VALUE
    h_ctl signals -o json --node probe --name http.error |
        jq -e --arg t "$1" --arg r "$2" --argjson v "$3" \
            'any(.[]; .labels.target == $t and .labels.reason == $r and .value == $v)' >/dev/null
}
vendor_incident() {
    h_ctl incidents -o json | jq -r '[.[] | select(.runbook == "vendor-outage")][0].id // empty'
}
has_incident() { [[ -n $(vendor_incident) ]]; }

# ---- All systems operational ----------------------------------------------------------------
h_wait "indicator 0 (none)" 30 is_value http.statuspage.indicator vendor 0
is_value http.statuspage.maintenance vendor 0 || h_fail "maintenance is not 0"
is_value http.up vendor 1 || h_fail "http.up{vendor} is not 1"
h_pass "status.json none -> http.statuspage.indicator 0, maintenance 0"

# ---- summary.json: the components ---------------------------------------------------------
h_wait "summary.json read" 10 is_value http.statuspage.indicator vendor-parts 2
for want in API:0 Web:2 Search:1 Billing:3 Old:0; do
    is_value http.statuspage.component vendor-parts "${want#*:}" "${want%%:*}" ||
        h_fail "component ${want%%:*}: want ${want#*:}, got $(latest http.statuspage.component vendor-parts "${want%%:*}")"
done
n=$(h_ctl signals -o json --node probe --name http.statuspage.component | jq length)
[[ $n == 5 ]] || h_fail "want 5 component series, got $n"
[[ $(latest http.statuspage.indicator plain) == null ]] ||
    h_fail "a target without statuspage: true read the page"
h_pass "summary.json -> components operational 0, degraded 1, partial 2, major 3, maintenance 0"

# ---- minor: below the runbook's level -------------------------------------------------------
status_json minor
h_wait "indicator 1 (minor)" 10 is_value http.statuspage.indicator vendor 1
sleep 3
[[ -z $(vendor_incident) ]] || h_fail "an incident opened on a minor indicator"
h_pass "minor -> 1, no incident"

# ---- major: the runbook's symptom fires -----------------------------------------------------
status_json major
h_wait "indicator 2 (major)" 10 is_value http.statuspage.indicator vendor 2
h_wait "an incident for vendor-outage" 20 has_incident
id=$(vendor_incident)
h_ctl incidents -o json | jq -e --arg id "$id" \
    'any(.[]; (.id | tostring) == $id and .runbook == "vendor-outage")' >/dev/null ||
    h_fail "incident $id is not the vendor-outage one"
h_pass "major -> 2, incident $id opened by the vendor-outage runbook"

# ---- Not that shape: the reason, no indicator ----------------------------------------------
page status.json '<html><body>We will be right back</body></html>'
h_wait "http.error statuspage: not a JSON object" 10 error_is vendor "statuspage: not a JSON object" 1
is_value http.up vendor 1 || h_fail "http.up{vendor} is not 1 while the page answers"
last_indicator=$(latest http.statuspage.indicator vendor | jq -r .ts)
sleep 2.5
[[ $(latest http.statuspage.indicator vendor | jq -r .ts) == "$last_indicator" ]] ||
    h_fail "http.statuspage.indicator was emitted for a body that is not a status page"
page status.json '{"page": {}, "status": {"description": "no indicator"}}'
h_wait "http.error statuspage: no status.indicator" 10 error_is vendor "statuspage: no status.indicator" 1
h_pass "malformed bodies -> http.error{reason=\"statuspage: ...\"}, no indicator"

# ---- Back to none: the error series ends ----------------------------------------------------
status_json none
h_wait "indicator 0 again" 10 is_value http.statuspage.indicator vendor 0
h_wait "the error series ended" 10 error_is vendor "statuspage: no status.indicator" 0
h_pass "recovered: indicator 0, http.error{reason} ended with 0"
