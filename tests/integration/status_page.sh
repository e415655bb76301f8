#!/usr/bin/env bash
# Issue 18: steering an incident by hand and the public status page. An operator opens an
# incident by hand on a node, notes a finding, lowers then raises its severity (the response
# deadline follows, the timeline and the audit log say who and why); a viewer may do none of it.
# Nothing is public until someone publishes an update: then the status page (its own listener)
# shows the incident in the publisher's words with the component's state, in HTML and in the
# Statuspage v2 JSON, and never the private note, the node's name or the internal title. The
# page is read-only; `vigilctl status-page export` writes the same files. A real browser
# (headless Chromium) loads the page during the incident: its DOM text is checked, a 375 px
# screenshot is kept under the build directory, and the page does not scroll sideways at that
# width. Resolved, the incident moves to the history and the component is operational again.
source "$(dirname "$0")/../lib/harness.sh"
h_setup

SP_PORT=$(h_free_port)
SP=http://127.0.0.1:$SP_PORT
ARTIFACTS=$VIGIL_BUILD/test-artifacts/status_page
NODE=worker-secret-7
PRIVATE="private finding: the db password rotation on $NODE broke it"
INTERNAL_TITLE="Checkout broken on the internal cluster"
mkdir -p "$ARTIFACTS"

h_start_coordinator "runbooks:
  dir: \"$VIGIL_SRC/runbooks\"
status_page:
  address: \"127.0.0.1\"
  port: $SP_PORT
  name: \"Acme <Status>\"
  url: \"https://status.example.com\"
  components:
    - name: \"Checkout API\"
      description: \"Payments & orders\"
      runbooks: [application-down]
    - name: \"Website\"
      runbooks: [high-error-rate, no-such-runbook]"
h_wait "the status page listening" 20 curl -fsS -o /dev/null "$SP/"

sign_public() { sed -n 's/^signing-public-key: *"\(.*\)"/\1/p' "$1"; }
as() { local who=$1; shift; VIGIL_CONFIG="$H_DIR/$who.yaml" "$VIGIL_BUILD/vigilctl" "$@"; }
"$VIGIL_BUILD/vigilctl" keygen --out "$H_DIR/vic.key" >/dev/null
h_write_ctl_config "$H_DIR/vic.yaml" "$H_DIR/vic.key"
h_ctl operators add vic --role viewer --public-key "$(h_key_public "$H_DIR/vic.key")" \
    --signing-key "$(sign_public "$H_DIR/vic.key.sign")" >/dev/null || h_fail "operators add vic failed"

# ---- nothing published yet: an empty page --------------------------------------------------
curl -fsS "$SP/api/v2/status.json" | jq -e '.status.indicator == "none" and
    .status.description == "All Systems Operational" and .page.name == "Acme <Status>"' >/dev/null ||
    h_fail "status.json before any incident: $(curl -sS "$SP/api/v2/status.json")"

# ---- open by hand --------------------------------------------------------------------------
inc=$(h_ctl -o json open --runbook application-down --severity SEV2 --title "$INTERNAL_TITLE" \
    --node "$NODE") || h_fail "open failed: $inc"
ID=$(jq -r .id <<<"$inc")
jq -e --arg n "$NODE" '.severity == "SEV2" and .state == "detected" and .runbook == "application-down"
    and .scope == [$n]' <<<"$inc" >/dev/null || h_fail "the opened incident: $inc"
opened_ms=$(h_sql "select (extract(epoch from opened_at) * 1000)::bigint from incidents where id = $ID")
due_ms() { h_sql "select (extract(epoch from response_due) * 1000)::bigint from incidents where id = $ID"; }
(($(due_ms) - opened_ms == 3600000)) || h_fail "a SEV2's response is due in an hour: $(due_ms) - $opened_ms"
h_capture out status h_ctl open --runbook no-such-runbook --severity SEV2 --title x
[[ $status == 1 && $out == *"no runbook no-such-runbook in force"* ]] || h_fail "an unknown runbook: $status $out"
grep -q 'component "Website" names runbook no-such-runbook, which is not loaded' "$H_DIR/coordinator.log" ||
    h_fail "no warning about the component's unknown runbook"
h_pass "an operator opens an incident by hand (SEV2, due in 1 h, the node in its scope); unknown runbooks refused"

# ---- a viewer may not open, note, set severity, update or publish ----------------------------
for cmd in "open --runbook application-down --severity SEV1 --title x" "note $ID x" \
    "severity $ID SEV1 --note x" "update $ID x" "update $ID x --public"; do
    # shellcheck disable=SC2086
    h_capture out status as vic $cmd
    [[ $status == 1 && $out == *"needs the responder role (you are viewer)"* ]] ||
        h_fail "a viewer's '$cmd' was not refused: $status $out"
done
h_pass "a viewer cannot open, note, change severity, update or publish"

# ---- a private note, severity down then up ---------------------------------------------------
h_ctl note "$ID" "$PRIVATE" >/dev/null || h_fail "note failed"
h_ctl severity "$ID" SEV3 --note "only some users affected" >/dev/null || h_fail "severity down failed"
(($(due_ms) - opened_ms == 4 * 3600000)) || h_fail "a SEV3's response is due 4 h after the opening"
h_capture out status h_ctl severity "$ID" SEV3 --note "again"
[[ $status == 1 && $out == *"already SEV3"* ]] || h_fail "setting the same severity: $status $out"
h_capture out status h_ctl severity "$ID" SEV1
[[ $status == 2 && $out == *"--note"* ]] || h_fail "severity without --note: $status $out"
before=$(date +%s%3N)
h_ctl -o json severity "$ID" SEV1 --note "all checkouts fail now" | jq -e '.severity == "SEV1"' \
    >/dev/null || h_fail "severity up failed"
due=$(due_ms)
((due >= before + 15 * 60000 - 1000 && due <= before + 15 * 60000 + 5000)) ||
    h_fail "a rise to SEV1 is due 15 min from now: due=$due now=$before"
h_ctl -o json incident show "$ID" | jq -e --arg p "$PRIVATE" '
    any(.timeline[]; .kind == "note" and .text == $p and .actor == "admin") and
    any(.timeline[]; .kind == "severity" and .actor == "admin" and
        (.text | test("SEV2 -> SEV3 by hand: only some users affected"))) and
    any(.timeline[]; .kind == "severity" and (.text | test("SEV3 -> SEV1 by hand"))) and
    any(.timeline[]; .kind == "opened" and .actor == "admin")' >/dev/null ||
    h_fail "the timeline: $(h_ctl -o json incident show "$ID" | jq -c .timeline)"
audit=$(h_sql "select string_agg(action, ',' order by id) from audit_log where subject = 'incident $ID'")
[[ $audit == "incident.open,incident.note,incident.severity,incident.severity" ]] ||
    h_fail "audit rows: $audit"
h_pass "a private note, severity down and up: deadline, timeline and audit log follow"

# ---- a private update is not published; an automatic incident never appears by itself ------
h_ctl update "$ID" "internal: still digging into $NODE" >/dev/null || h_fail "private update failed"
pg_conninfo() {
    local sock
    sock=$(readlink -f "$H_DIR/coord/pgdata")/../pgsock
    [[ -d $H_DIR/coord/pgsock ]] && sock=$H_DIR/coord/pgsock
    echo "host=$sock port=5432 user=vigil dbname=vigil"
}
read -r AUTO outcome < <("$VIGIL_BUILD/incident-inject" "$(pg_conninfo)" application-down/web-9 \
    application-down 1 critical "Application down" web-9) || h_fail "incident-inject failed"
[[ $outcome == opened ]] || h_fail "no automatic incident opened: $AUTO $outcome"
sleep 1.1 # the page is rendered at most once a second
curl -fsS "$SP/api/v2/summary.json" | jq -e '.incidents == [] and .status.indicator == "none"' \
    >/dev/null || h_fail "an unpublished incident reached the page: $(curl -sS "$SP/api/v2/summary.json")"
[[ $(curl -fsS "$SP/") != *web-9* ]] || h_fail "an automatic incident's node on the page"
h_pass "nothing is public until an update is published: not a private update, not an automatic incident"

# ---- publish ---------------------------------------------------------------------------------
h_capture out status h_ctl update "$ID" "x" --public --component "Nope=degraded"
[[ $status == 1 && $out == *'no component "Nope"'* ]] || h_fail "an unknown component: $status $out"
h_capture out status h_ctl update "$ID" "x" --public --component "Website=down"
[[ $status == 2 ]] || h_fail "a bad component status: $status $out"
h_ctl update "$ID" "Checkout is failing for some customers <b>& we are on it</b>." --public \
    --component "Checkout API=partial_outage" --title "Checkout errors" >/dev/null ||
    h_fail "publishing failed"
h_ctl ack "$ID" >/dev/null
h_ctl update "$ID" "We found the cause and are rolling out a fix." --public \
    --component "Checkout API=major_outage" >/dev/null || h_fail "the second public update failed"
sleep 1.1
summary=$(curl -fsS "$SP/api/v2/summary.json")
jq -e --arg id "$ID" '
    .page.name == "Acme <Status>" and .page.url == "https://status.example.com" and
    .status.indicator == "critical" and .status.description == "Major System Outage" and
    (.components | length == 2) and
    (.components[0] | .name == "Checkout API" and .status == "major_outage" and
        .description == "Payments & orders" and .position == 1) and
    .components[1].status == "operational" and
    (.incidents | length == 1) and
    (.incidents[0] | .id == $id and .name == "Checkout errors" and .status == "identified" and
        .impact == "critical" and .resolved_at == null and (.created_at | test("Z$")) and
        (.incident_updates | length == 2) and
        .incident_updates[0].body == "We found the cause and are rolling out a fix." and
        .incident_updates[0].status == "identified" and
        .incident_updates[0].affected_components[0].new_status == "major_outage" and
        .incident_updates[0].affected_components[0].old_status == "partial_outage" and
        .incident_updates[1].body == "Checkout is failing for some customers <b>& we are on it</b>." and
        .incident_updates[1].status == "investigating")' <<<"$summary" >/dev/null ||
    h_fail "summary.json: $summary"
curl -fsS "$SP/api/v2/status.json" | jq -e '.status.indicator == "critical" and .page.id == "vigil"
    and (keys == ["page", "status"])' >/dev/null || h_fail "status.json"
html=$(curl -fsS "$SP/")
[[ $html == *"Checkout errors"* && $html == *"&lt;b&gt;&amp; we are on it&lt;/b&gt;"* &&
    $html == *"Acme &lt;Status&gt;"* && $html == *"Major outage"* && $html != *"<b>&"* ]] ||
    h_fail "the HTML page: $html"
for page in "$html" "$summary" "$(curl -fsS "$SP/api/v2/status.json")"; do
    for secret in "$NODE" "private finding" "$INTERNAL_TITLE" "still digging" "admin"; do
        [[ $page != *"$secret"* ]] || h_fail "\"$secret\" is on the public page: $page"
    done
done
h_pass "published updates are on the page (HTML escaped, Statuspage v2 JSON); notes, nodes, internal title never"

# ---- read-only ------------------------------------------------------------------------------
for method in POST PUT DELETE; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" "$SP/")
    [[ $code == 405 ]] || h_fail "$method / answered $code"
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "$SP/api/v2/incidents/$ID") == 404 ]] || h_fail "unknown path"
headers=$(curl -fsSI "$SP/")
[[ ${headers,,} == *"content-security-policy: default-src 'none'"* ]] || h_fail "no CSP: $headers"
h_pass "the page is read-only (405) and sends a CSP without scripts"

# ---- the same page as static files -----------------------------------------------------------
h_ctl status-page export "$H_DIR/export" >/dev/null || h_fail "status-page export failed"
jq -e '.incidents[0].name == "Checkout errors"' "$H_DIR/export/api/v2/summary.json" >/dev/null &&
    jq -e '.status.indicator == "critical"' "$H_DIR/export/api/v2/status.json" >/dev/null &&
    grep -q "Checkout errors" "$H_DIR/export/index.html" ||
    h_fail "the exported files: $(ls -R "$H_DIR/export")"
as vic status-page export "$H_DIR/export-vic" >/dev/null || h_fail "a viewer may export the page"
h_pass "vigilctl status-page export writes index.html and api/v2/{summary,status}.json"

# ---- a real browser -----------------------------------------------------------------------
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $CHROMIUM ]]; then
    h_log "SKIP: no chromium (deps/debian.txt): the browser checks did not run"
    exit 77
fi
browser() {
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --no-first-run --disable-dev-shm-usage --user-data-dir="$H_DIR/chromium" "$@" 2>>"$H_DIR/chromium.log"
}
dom=$(browser --window-size=375,900 --dump-dom "$SP/") || h_fail "chromium could not load the page"
text=$(sed -e 's/<[^>]*>/ /g' <<<"$dom")
[[ $text == *"Checkout errors"* && $text == *"Major System Outage"* &&
    $text == *"Checkout API"* && $text == *"Major outage"* &&
    $text == *"We found the cause and are rolling out a fix."* &&
    $text == *"Checkout is failing for some customers &lt;b&gt;&amp; we are on it&lt;/b&gt;."* ]] ||
    h_fail "the DOM Chromium built: $dom"
[[ $dom != *"$NODE"* && $dom != *"private finding"* ]] || h_fail "a secret in the DOM"
rm -f "$ARTIFACTS/status-page-375.png"
(cd "$ARTIFACTS" && browser --window-size=375,1400 --screenshot="$ARTIFACTS/status-page-375.png" "$SP/" >/dev/null) ||
    h_fail "chromium could not take a screenshot"
[[ $(head -c 8 "$ARTIFACTS/status-page-375.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    h_fail "no PNG screenshot at $ARTIFACTS/status-page-375.png"
# Sideways scrolling at 375 px: the exported page (the same HTML) in a 375 px wide frame of a
# measuring page loaded from files (the served page forbids scripts; headless Chromium dumps the
# DOM of a 500 px window whatever --window-size says), which writes down how wide the page's
# content is against the frame's viewport.
cat >"$H_DIR/export/measure.html" <<'HTML'
<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="index.html" style="width:375px;height:900px;border:0"></iframe>
<script>
window.addEventListener("load", function () {
  var w = document.getElementById("f").contentWindow;
  document.body.setAttribute("data-widths",
    w.document.documentElement.scrollWidth + "x" + w.innerWidth);
});
</script></body></html>
HTML
widths=$(browser --allow-file-access-from-files --virtual-time-budget=5000 --dump-dom \
    "file://$H_DIR/export/measure.html" | sed -n 's/.*data-widths="\([0-9]*x[0-9]*\)".*/\1/p')
scroll=${widths%x*} inner=${widths#*x}
[[ -n $widths && $inner == 375 ]] || h_fail "the page was not measured at 375 px: \"$widths\""
((scroll <= inner)) || h_fail "the page scrolls sideways at 375 px: $scroll px wide"
h_pass "Chromium shows the incident (DOM text), no sideways scrolling at 375 px; screenshot $ARTIFACTS/status-page-375.png"

# ---- resolved: history, components operational ----------------------------------------------
h_ctl resolve "$ID" --note "rolled back the deploy" >/dev/null || h_fail "resolve failed"
sleep 1.1
summary=$(curl -fsS "$SP/api/v2/summary.json")
jq -e '.incidents == [] and .status.indicator == "none" and
    all(.components[]; .status == "operational")' <<<"$summary" >/dev/null ||
    h_fail "after the resolve: $summary"
html=$(curl -fsS "$SP/")
[[ $html == *"Past incidents (last 90 days)"*"Checkout errors"*"This incident has been resolved."* &&
    $html == *"No active incidents."* ]] || h_fail "the history after the resolve: $html"
(cd "$ARTIFACTS" && browser --window-size=375,1400 --screenshot="$ARTIFACTS/status-page-375-resolved.png" "$SP/" >/dev/null) || true
h_pass "resolved: in the history, every component operational"
