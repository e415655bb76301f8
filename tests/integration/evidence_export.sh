#!/usr/bin/env bash
# Export bundles an investigator can check offline (issue 15, docs/forensics.md "Export
# bundles"), and checkpoints sent to the audit channel.
#   1. an incident with a command (its output, and the host and 40 MiB file evidence its catalog
#      entry names) and a timeline note is exported by a responder (a viewer may not): the tar
#      holds the artifacts, the timeline, the commands, the chain rows, MANIFEST and its
#      signature; vigilctl's memory grows far less than the artifact's size (streamed); the export
#      is an audit row (who, which incident, from where), each artifact fetched one more
#   2. `vigilctl evidence verify-bundle` passes, and so does the bundle's own verify.sh with
#      sha256sum and openssl alone (PATH without vigilctl)
#   3. one byte flipped in one artifact inside the tar: verify-bundle fails naming that file,
#      and so does verify.sh; a tampered MANIFEST or MANIFEST.sig fails on the signature; a tar
#      with a path outside its directory or a symlink is refused
#   4. every checkpoint (the export's included) reaches evidence.checkpoint_webhook; while the
#      receiver fails, the failure is logged once and counted, and what failed is sent again,
#      oldest first, with the next checkpoint
source "$(dirname "$0")/../lib/harness.sh"

[[ $(id -u) == 0 ]] || { h_log "SKIP: needs root (the catalog and signer file are root's)"; exit 77; }
command -v openssl >/dev/null || { h_log "SKIP: openssl is not installed"; exit 77; }

h_setup
h_start_sink
public_of() { sed -n 's/^signing-public-key: "\(.*\)"$/\1/p' "$1"; }
RB=$H_DIR/runbooks
mkdir -p "$RB"
cat >"$RB/export-drill.yaml" <<'YAML'
id: export-drill
title: Export drill
severity: SEV3
symptoms:
  - {id: down, signal: proc.up, labels: {name: never-there}, below: 1, scope: node}
YAML
h_write_coordinator_config "runbooks:
  dir: \"$RB\"
evidence:
  checkpoint_interval: 0s
  checkpoint_webhook: \"$SINK/audit/checkpoints\""
sed -i "s|^admin:|admin:\n  signing_public_key: \"$(public_of "$H_DIR/admin.key.sign")\"|" \
    "$H_DIR/coordinator.yaml"
"$VIGIL_BUILD/vigil-coordinator" -c "$H_DIR/coordinator.yaml" >>"$H_DIR/coordinator.log" 2>&1 &
H_COORD_PID=$!
h_wait "coordinator healthy" 90 h_coordinator_healthy
h_wait "the coordinator's signing key" 10 test -s "$H_DIR/coord/coordinator.sign"
COORD_SIGN=$(public_of "$H_DIR/coord/coordinator.sign")

cat >"$H_DIR/signers.yaml" <<EOF
signers:
  - {name: coordinator, role: coordinator, public_key: "$COORD_SIGN"}
  - {name: admin, role: admin, public_key: "$(public_of "$H_DIR/admin.key.sign")"}
EOF
chmod 644 "$H_DIR/signers.yaml"
mkdir -p "$H_DIR/bin"
cat >"$H_DIR/bin/canary.sh" <<'EOF'
#!/bin/sh
echo "hello $1"
EOF
chmod 755 "$H_DIR/bin/canary.sh"
# An artifact far larger than what vigilctl may hold in memory while it exports.
BIG_MIB=40
mkdir -p "$H_DIR/files"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$H_DIR/files/big.bin"
h_start_agent node-x "signers_file: \"$H_DIR/signers.yaml\"
evidence:
  allow_dirs: [\"$H_DIR/files\"]
  max_size: 64MiB
  chunk_size: 1MiB
spool:
  max_size: 256MiB
actions:
  - name: canary
    kind: exec
    argv: [$H_DIR/bin/canary.sh, \"{name}\"]
    root: true
    auto: true
    evidence: [host, \"file path=$H_DIR/files/big.bin\"]
    params:
      - {name: name, identifier: {pattern: \"[a-z]+\"}}"
h_wait "node-x declares its catalog" 30 grep -q "node=node-x declares 1 actions" "$H_DIR/coordinator.log"
h_add_operator rita responder
h_add_operator vic viewer

# ---- 1. an incident with evidence and a command, exported --------------------------------
id=$(h_ctl open --runbook export-drill --severity SEV3 --title "export drill" --node node-x -o json | jq -r '.id')
[[ $id =~ ^[0-9]+$ ]] || h_fail "open gave no incident id: $id"
h_ctl note "$id" "operator saw the canary" >/dev/null || h_fail "note failed"
cmd=$(h_ctl run canary --node node-x --incident "$id" --arg name=export -o json |
    jq -r 'if type == "array" then .[0].id else .id end')
[[ -n $cmd && $cmd != null ]] || h_fail "run gave no command id"
cmd_done() { [[ $(h_ctl command show "$cmd" -o json | jq -r '.state') == done ]]; }
h_wait "command $cmd done" 30 cmd_done
stored() {
    [[ $(h_sql "select count(*) from evidence_collections c join evidence_targets t on t.collection_id = c.id
                where c.command_id = '$cmd' and t.status = 'stored'") -ge 3 ]]
}
h_wait "the command's output, host and file evidence stored" 60 stored
artifacts=$(h_sql "select count(*) from evidence_collections c join evidence_targets t on t.collection_id = c.id
                   where t.status = 'stored' and (c.incident_id = $id or c.command_id in
                   (select id from command_requests where incident_id = $id))")
sink_before=$(jq -s '[.[] | select(.path == "/audit/checkpoints")] | length' "$SINK_LOG")

h_capture out rc h_as vic evidence export "$id" --out "$H_DIR/viewer.tar"
[[ $rc == 1 && $out == *responder* && ! -e $H_DIR/viewer.tar ]] || h_fail "a viewer exported: $rc $out"
h_capture out rc /usr/bin/time -f 'max_rss_kib=%M' -o "$H_DIR/export.time" \
    env VIGIL_CONFIG="$H_DIR/rita.yaml" "$VIGIL_BUILD/vigilctl" evidence export "$id" --out "$H_DIR/b.tar"
[[ $rc == 0 && $out == "incident $id: bundle written to $H_DIR/b.tar: "*" files, $artifacts artifacts ("*"manifest signed by $COORD_SIGN"* ]] ||
    h_fail "export: exit $rc: $out"
[[ $(stat -c %a "$H_DIR/b.tar") == 600 ]] || h_fail "the bundle's mode is $(stat -c %a "$H_DIR/b.tar")"
# Streamed: vigilctl never held the 40 MiB artifact (nor the bundle) in memory: what exporting
# adds to the peak of a vigilctl that fetches nothing (its libraries, libcrypto's 3.4 MiB among
# them, are the same) stays under half the artifact. Not under the sanitizers, whose shadow
# memory and quarantine of freed blocks make RSS say nothing about that.
sanitized=0
ldd "$VIGIL_BUILD/vigilctl" | grep -E 'lib(a|ub)san' >/dev/null && sanitized=1
/usr/bin/time -f 'max_rss_kib=%M' -o "$H_DIR/idle.time" \
    env VIGIL_CONFIG="$H_DIR/rita.yaml" "$VIGIL_BUILD/vigilctl" evidence list >/dev/null ||
    h_fail "vigilctl evidence list failed"
idle_rss=$(sed -n 's/^max_rss_kib=//p' "$H_DIR/idle.time")
rss_bounded() { # FILE WHAT
    local rss
    rss=$(sed -n 's/^max_rss_kib=//p' "$1")
    if ((sanitized)); then
        h_log "vigilctl $2: peak RSS ${rss} KiB (a sanitizer build: not checked)"
        return 0
    fi
    ((idle_rss > 0 && rss > 0 && rss - idle_rss < BIG_MIB * 1024 / 2)) ||
        h_fail "vigilctl's peak RSS while $2: ${rss} KiB, ${idle_rss} KiB for a listing"
    h_log "vigilctl $2: peak RSS ${rss} KiB with a ${BIG_MIB} MiB artifact (${idle_rss} KiB for a listing)"
}
rss_bounded "$H_DIR/export.time" exporting
h_capture out rc h_as rita evidence export "$id" --out "$H_DIR/b.tar"
[[ $rc == 1 && $out == *"never overwritten"* ]] || h_fail "export over an existing file: $rc $out"
h_capture out rc h_as rita evidence export 999999 --out "$H_DIR/none.tar"
[[ $rc == 1 && $out == *"999999"*"not found"* && ! -e $H_DIR/none.tar ]] || h_fail "export of no incident: $rc $out"

D=incident-$id
mkdir -p "$H_DIR/x"
tar -C "$H_DIR/x" -xf "$H_DIR/b.tar" || h_fail "tar cannot read the bundle"
B=$H_DIR/x/$D
for f in README.txt verify.sh MANIFEST MANIFEST.sig coordinator.pem checkpoint.txt incident.txt timeline.txt commands.txt; do
    [[ -f $B/$f ]] || h_fail "the bundle has no $f: $(tar -tf "$H_DIR/b.tar")"
done
[[ $(tar -tf "$H_DIR/b.tar" | grep -c -v "^$D/") == 0 ]] || h_fail "entries outside $D/: $(tar -tf "$H_DIR/b.tar")"
[[ $(ls "$B/artifacts" | wc -l) == "$artifacts" ]] || h_fail "artifacts: $(ls "$B/artifacts")"
out_file=$(ls "$B"/artifacts/*-command_output-node-x)
[[ $(cat "$out_file") == "hello export" ]] || h_fail "the command's output in the bundle: $(cat "$out_file")"
cmp -s "$B"/artifacts/*-file-node-x "$H_DIR/files/big.bin" || h_fail "the file artifact in the bundle differs from the file"
grep -q $'\tnote\tadmin\toperator saw the canary$' "$B/timeline.txt" || h_fail "timeline.txt: $(cat "$B/timeline.txt")"
grep -q "^$cmd"$'\t'".*"$'\tnode-x\tcanary\t' "$B/commands.txt" || h_fail "commands.txt: $(cat "$B/commands.txt")"
grep -q $'\t'"$cmd"$'\t'".*"$'\tdone\t0\t' "$B/commands.txt" || h_fail "commands.txt has no done report: $(cat "$B/commands.txt")"
# The manifest links every artifact, timeline row and report to its chain, as the database has it.
[[ $(grep -c '^# link evidence ' "$B/MANIFEST") == "$artifacts" ]] || h_fail "evidence links: $(grep '^# link' "$B/MANIFEST")"
timeline_rows=$(h_sql "select count(*) from incident_events e join chain_links l on l.chain = 'incident_events' and l.row_id = e.id
                       where e.incident_id = $id and l.seq <= $(sed -n 's/^timeline_head: //p' "$B/checkpoint.txt")")
[[ $(grep -c '^# link timeline ' "$B/MANIFEST") == "$timeline_rows" && $timeline_rows -ge 2 ]] ||
    h_fail "timeline links: $(grep -c '^# link timeline ' "$B/MANIFEST") of $timeline_rows"
[[ $(grep -c '^# link reports ' "$B/MANIFEST") -ge 3 ]] || h_fail "report links: $(grep '^# link reports' "$B/MANIFEST")"
seq=$(sed -n 's/^# link timeline \([0-9]*\) .*/\1/p' "$B/MANIFEST" | head -1)
grep -q "^# link timeline $seq [0-9]* [0-9a-f]* $(h_sql "select encode(link, 'hex') from chain_links where chain = 'incident_events' and seq = $seq") " "$B/MANIFEST" ||
    h_fail "the manifest's link of timeline place $seq is not the database's"
audit=$(h_sql "select actor || ' ' || subject || ' ' || detail from audit_log where action = 'evidence.export'")
[[ $(wc -l <<<"$audit") == 1 && $audit == "operator:rita incident=$id files="*"artifacts=$artifacts "*"manifest_sha256=$(sha256sum "$B/MANIFEST" | cut -d' ' -f1) "*"from=127.0.0.1" ]] ||
    h_fail "the export's audit row: $audit"
grep -q "incident=$id exported by operator=rita" "$H_DIR/coordinator.log" || h_fail "the export is not logged"
# Each artifact the export fetched is its own evidence.get row, with the address too.
[[ $(h_sql "select count(*) from audit_log where action = 'evidence.get' and actor = 'operator:rita'
            and detail like '% from=127.0.0.1'") == "$artifacts" ]] ||
    h_fail "the export's fetches in the audit log: $(h_sql "select actor, subject, detail from audit_log where action = 'evidence.get'")"
h_pass "an incident's artifacts, timeline and commands exported by a responder, with their chain links; audited"

# ---- 2. verified offline, by vigilctl and by sha256sum + openssl alone --------------------
h_capture out rc /usr/bin/time -f 'max_rss_kib=%M' -o "$H_DIR/verify.time" \
    "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/b.tar"
rss_bounded "$H_DIR/verify.time" verifying
[[ $rc == 0 && $(head -1 <<<"$out") == "$H_DIR/b.tar: incident $id, exported "*" by operator:rita" &&
    $out == *"chains: $artifacts artifacts, $timeline_rows timeline rows, "*"recompute and agree with the checkpoint of "* &&
    $(tail -1 <<<"$out") == "bundle intact, signed by $COORD_SIGN: compare that key"* ]] ||
    h_fail "verify-bundle (no configuration, no coordinator needed): exit $rc: $out"
h_capture out rc env -i PATH=/usr/bin:/bin sh "$B/verify.sh"
[[ $rc == 0 && $out == *"verify.sh: OK: "*" files match the manifest; the manifest and the checkpoint are signed by $COORD_SIGN"* ]] ||
    h_fail "the bundle's verify.sh: exit $rc: $out"
(cd "$B" && openssl pkeyutl -verify -pubin -inkey coordinator.pem -rawin -in MANIFEST -sigfile MANIFEST.sig) |
    grep -q "Signature Verified Successfully" || h_fail "README's openssl step"
h_pass "verify-bundle and the bundle's verify.sh (sha256sum, openssl) pass"

# ---- 3. tampering --------------------------------------------------------------------------
# flip TAR MEMBER OUT: a copy of TAR with one byte of MEMBER's content changed in place.
flip() {
    python3 - "$@" <<'PY'
import shutil, sys, tarfile
src, member, dst = sys.argv[1:4]
with tarfile.open(src) as t:
    m = t.getmember(member)
    offset = m.offset_data + m.size // 2
shutil.copyfile(src, dst)
with open(dst, "r+b") as f:
    f.seek(offset)
    b = f.read(1)
    f.seek(offset)
    f.write(bytes([b[0] ^ 0x01]))
PY
}
art=$D/artifacts/$(basename "$out_file")
flip "$H_DIR/b.tar" "$art" "$H_DIR/flipped.tar"
h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/flipped.tar"
[[ $rc == 1 && $out == "vigilctl: $H_DIR/flipped.tar: $art: SHA-256 "*" differs from the manifest's: the file was changed" ]] ||
    h_fail "one byte flipped in $art: exit $rc: $out"
rc=0
out=$("$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/flipped.tar" -o json 2>/dev/null) || rc=$?
[[ $rc == 1 && $(jq -r '.ok' <<<"$out") == false && $(jq -r '.file' <<<"$out") == "${art#$D/}" ]] ||
    h_fail "verify-bundle -o json on the flipped bundle: $out"
mkdir -p "$H_DIR/y" && tar -C "$H_DIR/y" -xf "$H_DIR/flipped.tar"
h_capture out rc env -i PATH=/usr/bin:/bin sh "$H_DIR/y/$D/verify.sh"
[[ $rc == 1 && $out == *"${art#$D/}: FAILED"* && $out == *"verify.sh: FAILED"* ]] || h_fail "verify.sh on the flipped bundle: exit $rc: $out"

for member in MANIFEST.sig MANIFEST; do
    flip "$H_DIR/b.tar" "$D/$member" "$H_DIR/tampered.tar"
    h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/tampered.tar"
    [[ $rc == 1 && $out == *"$D/MANIFEST: "*"signature (MANIFEST.sig) does not verify"* ]] ||
        h_fail "a tampered $member: exit $rc: $out"
done
rm -rf "$H_DIR/z" && mkdir -p "$H_DIR/z" && tar -C "$H_DIR/z" -xf "$H_DIR/tampered.tar"
h_capture out rc env -i PATH=/usr/bin:/bin sh "$H_DIR/z/$D/verify.sh"
[[ $rc == 1 && $out == *"MANIFEST's signature does not verify"* ]] || h_fail "verify.sh on a tampered MANIFEST: exit $rc: $out"

# Hostile tars: a path out of the directory, a symlink, a file added after signing, not a tar.
python3 - "$H_DIR" "$D" <<'PY'
import io, sys, tarfile
d, top = sys.argv[1:3]
def add(t, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
with tarfile.open(d + "/b.tar") as src:
    members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
for out, extra in (("escape", lambda t: add(t, top + "/../escape")),
                   ("symlink", lambda t: add(t, top + "/artifacts/link", kind=tarfile.SYMTYPE, link="/etc/shadow")),
                   ("added", lambda t: add(t, top + "/artifacts/extra", b"planted"))):
    with tarfile.open(d + "/" + out + ".tar", "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in members:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
        extra(t)
open(d + "/junk.tar", "wb").write(b"not a tar at all\n" * 100)
PY
h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/escape.tar"
[[ $rc == 1 && $out == *"entry \"$D/../escape\": not a path inside the bundle"* ]] || h_fail "a path outside: exit $rc: $out"
h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/symlink.tar"
[[ $rc == 1 && $out == *"is not a regular file"* ]] || h_fail "a symlink: exit $rc: $out"
h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/added.tar"
[[ $rc == 1 && $out == *"$D/artifacts/extra: not in the manifest"* ]] || h_fail "an added file: exit $rc: $out"
h_capture out rc "$VIGIL_BUILD/vigilctl" evidence verify-bundle "$H_DIR/junk.tar"
[[ $rc == 1 && $out == *"not a tar"* ]] || h_fail "junk: exit $rc: $out"
h_pass "a flipped byte names its file; a tampered manifest or signature fails; hostile tars are refused"

# ---- 4. checkpoints to the audit channel -----------------------------------------------------
posted() { jq -r 'select(.path == "/audit/checkpoints") | .body | fromjson | .checkpoint' "$SINK_LOG"; }
export_cp() { posted | grep -c -F "$(sed -n 's/^signature: //p' "$B/checkpoint.txt")" || true; }
export_posted() { (($(export_cp) >= 1)); }
h_wait "the export's checkpoint on the audit channel" 10 export_posted
body=$(jq -s -c '[.[] | select(.path == "/audit/checkpoints")] | last' "$SINK_LOG")
[[ $(jq -r '.headers["Content-Type"]' <<<"$body") == application/json &&
    $(jq -r '.body | fromjson | .kind' <<<"$body") == vigil.checkpoint ]] || h_fail "the posted body: $body"
[[ $(jq -s '[.[] | select(.path == "/audit/checkpoints")] | length' "$SINK_LOG") -gt $sink_before ]] ||
    h_fail "no checkpoint posted by the export"

echo 500 >"$H_DIR/sink.mode"
failed0=$(h_metric 'vigil_checkpoint_webhook_total{result="failed"}')
h_ctl evidence checkpoint --out "$H_DIR/cpA" || h_fail "checkpoint A"
failures() { h_metric 'vigil_checkpoint_webhook_total{result="failed"}'; }
failed_at_least() { (($(failures) >= $1)); }
h_wait "a failed post counted" 10 failed_at_least $((failed0 + 1))
sleep 1.1 # checkpoint files are named by their millisecond
h_ctl evidence checkpoint --out "$H_DIR/cpB" || h_fail "checkpoint B"
h_wait "the second failure counted" 10 failed_at_least $((failed0 + 2))
[[ $(grep -c "checkpoint webhook: $SINK/audit/checkpoints failed: HTTP status 500 (sent again with the next checkpoint)" "$H_DIR/coordinator.log") == 1 ]] ||
    h_fail "a streak of failures is logged once: $(grep 'checkpoint webhook' "$H_DIR/coordinator.log")"
rm -f "$H_DIR/sink.mode"
sleep 1.1
h_ctl evidence checkpoint --out "$H_DIR/cpC" || h_fail "checkpoint C"
sigs() { for f in "$@"; do sed -n 's/^signature: //p' "$f"; done; }
last_three() {
    jq -r 'select(.path == "/audit/checkpoints" and .answer == "200") | .body | fromjson | .checkpoint' "$SINK_LOG" |
        sed -n 's/^signature: //p' | tail -3 | tr -d '\n'
}
delivered() { [[ $(last_three) == "$(sigs "$H_DIR/cpA" "$H_DIR/cpB" "$H_DIR/cpC" | tr -d '\n')" ]]; }
h_wait "A, B, then C delivered once the receiver answers" 10 delivered
grep -q "checkpoint webhook: $SINK/audit/checkpoints answers again" "$H_DIR/coordinator.log" || h_fail "the recovery is not logged"
h_pass "checkpoints reach the audit channel; failures are logged once, counted, and sent again with the next"
h_pass "evidence export"
