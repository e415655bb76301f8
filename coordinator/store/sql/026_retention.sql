-- 026: retention and legal hold (issue 15, docs/forensics.md "Retention and legal hold").
--
-- signals becomes a table partitioned by day (UTC) on ts, so old samples leave by dropping a
-- whole partition (no DELETE, no vacuum, no bloat). The maintenance pass (store_retention.c,
-- on a connection of its own) creates the partitions ahead of time, drops the ones wholly older
-- than retention.signals, and removes the content of expired evidence whose incident is not
-- on hold. Every removal writes its audit_log row in the same transaction, so it is in the audit
-- chain (024_chains.sql).
--
-- Why no unique key on signals: exactly-once ingest is agent_messages' primary key
-- (agent_id, seq): a message's samples are COPYed only when its (agent_id, seq) row was new in
-- the same transaction (store_ingest.c). signals itself has never had a unique index, so a
-- partitioned signals needs none (a partitioned table's unique index would have to include ts).
--
-- A default partition takes the samples whose day has no partition yet (an agent whose clock is
-- days off, a spool resent after a long outage). It is not a place rows stay: each pass moves its
-- rows into their day's partition when that day is within retention and at most
-- retention.signals_ahead days ahead (creating the partition), deletes (audited) the ones older
-- than retention, and counts and logs the rest (too far in the future) as
-- vigil_retention_signals_default_rows until their day comes.

-- ---- signals, partitioned by day ----

ALTER TABLE signals RENAME TO signals_unpartitioned;
ALTER INDEX signals_agent_name_ts RENAME TO signals_unpartitioned_agent_name_ts;
DROP TRIGGER signals_latest ON signals_unpartitioned;

CREATE TABLE signals (
    agent_id   text NOT NULL,
    seq        bigint NOT NULL,
    name       text NOT NULL,
    value      double precision NOT NULL,
    unit       text NOT NULL DEFAULT '',
    labels     jsonb NOT NULL DEFAULT '{}',
    ts         timestamptz NOT NULL,
    state      smallint NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),
    node       text,
    command_id text
) PARTITION BY RANGE (ts);
-- As in 001: every partition gets it.
CREATE INDEX signals_agent_name_ts ON signals (agent_id, name, ts DESC);
CREATE TABLE signals_default PARTITION OF signals DEFAULT;

-- The partition of one day: signals_pYYYYMMDD, [day 00:00 UTC, next day 00:00 UTC).
CREATE FUNCTION vigil_signals_partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'signals_p' || to_char(day, 'YYYYMMDD')
$$;

-- Creates day's partition unless it exists, moving the default partition's rows of that day
-- into it first (ATTACH refuses while the default holds any). Returns the rows moved, or NULL
-- when the partition was there already. The caller sets lock_timeout: this takes ACCESS
-- EXCLUSIVE on the default partition and on the new table, SHARE UPDATE EXCLUSIVE on signals
-- (ingest's inserts go on, except into the default partition for this short transaction).
CREATE FUNCTION vigil_signals_partition(day date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    part text := vigil_signals_partition_name(day);
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    moved bigint;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    LOCK TABLE signals_default IN ACCESS EXCLUSIVE MODE;
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN -- another coordinator made it meanwhile
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE signals INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    -- The bounds as a constraint too: ATTACH then skips scanning the new table.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)',
                   part, part || '_day', lo, hi);
    EXECUTE format('WITH moved AS (DELETE FROM signals_default WHERE ts >= $1 AND ts < $2'
                   ' RETURNING agent_id, seq, name, value, unit, labels, ts, state, node, command_id)'
                   ' INSERT INTO %I (agent_id, seq, name, value, unit, labels, ts, state, node,'
                   ' command_id) SELECT * FROM moved', part) USING lo, hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format('ALTER TABLE signals ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN moved;
END
$$;

-- The day partitions of signals with their day, oldest first.
CREATE FUNCTION vigil_signals_partitions(OUT part text, OUT day date)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, to_date(substr(c.relname, 10), 'YYYYMMDD')
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'signals'::regclass AND c.relname ~ '^signals_p[0-9]{8}$'
     ORDER BY 2
$$;

-- Rows of a table to report in an audit row: exact under a million, else the planner's estimate
-- (counting a day of 1,000 nodes would read all of it just to say how much went).
CREATE FUNCTION vigil_rows_to_report(tbl regclass, OUT rows bigint, OUT estimated boolean)
LANGUAGE plpgsql AS $$
DECLARE
    tuples real;
BEGIN
    SELECT reltuples INTO tuples FROM pg_class WHERE oid = tbl;
    IF tuples IS NULL OR tuples < 1000000 THEN
        EXECUTE format('SELECT count(*) FROM %s', tbl) INTO rows;
        estimated := false;
    ELSE
        rows := tuples::bigint;
        estimated := true;
    END IF;
END
$$;

-- Drops the oldest day partition whose whole day ended before cutoff, with its audit row
-- (actor, action retention.signals, subject the partition, detail: day, rows, bytes, why).
-- One partition per call (one short ACCESS EXCLUSIVE on signals each); no row when none is due.
CREATE FUNCTION vigil_signals_drop_expired(cutoff timestamptz, actor text, why text,
                                           OUT part text, OUT day date, OUT rows bigint,
                                           OUT bytes bigint, OUT audit_id bigint)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    estimated boolean;
BEGIN
    SELECT p.part, p.day INTO part, day FROM vigil_signals_partitions() p
     WHERE ((p.day + 1)::timestamp AT TIME ZONE 'UTC') <= cutoff
     ORDER BY p.day LIMIT 1;
    IF part IS NULL THEN
        RETURN;
    END IF;
    SELECT r.rows, r.estimated INTO rows, estimated FROM vigil_rows_to_report(part::regclass) r;
    bytes := pg_total_relation_size(part::regclass);
    EXECUTE format('DROP TABLE %I', part);
    INSERT INTO audit_log (actor, action, subject, detail)
    VALUES (actor, 'retention.signals', part,
            format('dropped the signals of %s (UTC): rows%s%s bytes=%s; %s', day,
                   CASE WHEN estimated THEN '~' ELSE '=' END, rows, bytes, why))
    RETURNING id INTO audit_id;
    RETURN NEXT;
END
$$;

-- The default partition's rows older than cutoff go, with one audit row (no row when none).
CREATE FUNCTION vigil_signals_default_expire(cutoff timestamptz, actor text, why text,
                                             OUT rows bigint, OUT audit_id bigint)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM signals_default WHERE ts < cutoff;
    GET DIAGNOSTICS rows = ROW_COUNT;
    IF rows = 0 THEN
        RETURN;
    END IF;
    INSERT INTO audit_log (actor, action, subject, detail)
    VALUES (actor, 'retention.signals', 'signals_default',
            format('deleted %s rows older than %s UTC from the default partition; %s', rows,
                   to_char(cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), why))
    RETURNING id INTO audit_id;
    RETURN NEXT;
END
$$;

-- The rows already stored: a partition for each day of the last 400 that has samples (older or
-- future days stay in the default partition, for the first pass to delete or keep), then the
-- rows. A large table takes a while here (it is copied once); `vigilctl` works again once the
-- coordinator is up.
DO $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM signals_unpartitioned
              WHERE ts >= now() - interval '400 days' AND ts < now() + interval '3 days'
    LOOP
        PERFORM vigil_signals_partition(d);
    END LOOP;
    FOR d IN SELECT (now() AT TIME ZONE 'UTC')::date + i FROM generate_series(0, 2) i
    LOOP
        PERFORM vigil_signals_partition(d);
    END LOOP;
END
$$;
INSERT INTO signals (agent_id, seq, name, value, unit, labels, ts, state, node, command_id)
SELECT agent_id, seq, name, value, unit, labels, ts, state, node, command_id
  FROM signals_unpartitioned;
DROP TABLE signals_unpartitioned;

-- As in 002/004: signal_latest kept current once per ingest statement (a statement-level
-- trigger with a transition table is allowed on a partitioned table, and sees the rows routed
-- to every partition).
CREATE TRIGGER signals_latest
    AFTER INSERT ON signals
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION signal_latest_update();

-- ---- legal hold ----

-- An incident's hold and its release, as rows: the state is the newest row. Append-only; who,
-- when and why are kept for every change. `vigilctl hold` / `vigilctl hold release`.
CREATE TABLE holds (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    held        boolean NOT NULL,          -- true: placed; false: released
    actor       text NOT NULL,             -- "operator:NAME"
    at          timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX holds_incident ON holds (incident_id, id DESC);
CREATE TRIGGER holds_append_only
    BEFORE UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER holds_no_truncate
    BEFORE TRUNCATE ON holds
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

CREATE FUNCTION vigil_incident_held(incident bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT h.held FROM holds h WHERE h.incident_id = incident
                     ORDER BY h.id DESC LIMIT 1), false)
$$;

-- Places (hold true) or releases (false) incident's hold: its holds row, its audit row
-- (incident.hold / incident.hold_release, subject incident:ID, detail the reason) and a timeline
-- note (by_name: the operator's name, as timelines name people), in one transaction. outcome: 'done'; 'unknown' (no such incident); 'already' (it was
-- already in that state: nothing written). hold_id, at, actor and reason: the newest holds row
-- (the one written, or the one in force).
CREATE FUNCTION vigil_hold_set(incident bigint, hold boolean, by_actor text, by_name text,
                               why text,
                               OUT outcome text, OUT hold_id bigint, OUT at timestamptz,
                               OUT actor text, OUT reason text)
LANGUAGE plpgsql AS $$
BEGIN
    -- Two operators at once: the second waits, then finds the first one's row.
    PERFORM 1 FROM incidents i WHERE i.id = incident FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    SELECT h.id, h.at, h.actor, h.reason INTO hold_id, at, actor, reason FROM holds h
     WHERE h.incident_id = incident ORDER BY h.id DESC LIMIT 1;
    IF vigil_incident_held(incident) = hold THEN
        outcome := 'already';
        RETURN;
    END IF;
    INSERT INTO holds (incident_id, held, actor, reason) VALUES (incident, hold, by_actor, why)
        RETURNING holds.id, holds.at, holds.actor, holds.reason INTO hold_id, at, actor, reason;
    INSERT INTO audit_log (actor, action, subject, detail)
    VALUES (by_actor, CASE WHEN hold THEN 'incident.hold' ELSE 'incident.hold_release' END,
            'incident:' || incident, why);
    INSERT INTO incident_events (incident_id, at, kind, actor, text, data)
    VALUES (incident, at, 'note', by_name,
            CASE WHEN hold THEN 'legal hold placed: its evidence is kept whatever the retention'
                 ELSE 'legal hold released: its evidence follows retention.evidence again' END
            || CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END,
            jsonb_build_object('hold', hold));
    outcome := 'done';
END
$$;

-- The incident an artifact belongs to: its collection's (an investigation), or that of the
-- command whose run left it (015). NULL: an operator's collection, of no incident.
CREATE FUNCTION vigil_evidence_incident(evidence_id bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.incident_id, nullif(r.incident_id, 0))
      FROM evidence e JOIN evidence_collections c ON c.id = e.collection_id
      LEFT JOIN command_requests r ON r.id = c.command_id
     WHERE e.id = evidence_id
$$;

-- ---- evidence retention ----

-- The content of a vault artifact removed by retention. The vault row stays, so the chain
-- (which covers the metadata and the content's SHA-256, not the bytes) still verifies; its
-- chunks are gone. audit_id names the audit row written in the same transaction: `vigilctl
-- evidence verify` accepts a row without content only when both are there, and the audit chain
-- covers that row. Append-only. No foreign keys: evidence and audit_log are append-only already,
-- and a reference would let TRUNCATE of them fail on the key before their own refusal speaks.
CREATE TABLE evidence_removals (
    evidence_id bigint PRIMARY KEY,     -- evidence (id)
    audit_id    bigint NOT NULL UNIQUE, -- audit_log (id)
    removed_at  timestamptz NOT NULL DEFAULT now(),
    chunks      bigint NOT NULL,
    bytes       bigint NOT NULL
);
CREATE TRIGGER evidence_removals_append_only
    BEFORE UPDATE OR DELETE ON evidence_removals
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER evidence_removals_no_truncate
    BEFORE TRUNCATE ON evidence_removals
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

-- As in 011, and one more case: the chunks of a vault artifact with an evidence_removals row,
-- whose incident is not on hold. Everything else stays refused.
CREATE OR REPLACE FUNCTION vigil_evidence_chunks_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    vault_id bigint;
    incident bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT e.id INTO vault_id FROM evidence e
         WHERE e.agent_id = OLD.agent_id AND e.artifact = OLD.artifact;
        IF vault_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM evidence_chunks c
                           WHERE c.agent_id = OLD.agent_id AND c.artifact = OLD.artifact AND c.last)
           AND NOT EXISTS (SELECT 1 FROM evidence_targets t
                           WHERE t.collection_id = OLD.collection_id
                             AND t.agent_id = OLD.agent_id AND t.status = 'pending') THEN
            RETURN OLD;
        END IF;
        IF vault_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM evidence_removals r WHERE r.evidence_id = vault_id) THEN
            incident := vigil_evidence_incident(vault_id);
            IF incident IS NOT NULL AND vigil_incident_held(incident) THEN
                RAISE EXCEPTION 'evidence % belongs to incident %, which is on legal hold: '
                                'its content is kept', vault_id, incident
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'evidence_chunks is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Removes the content of up to max_rows vault artifacts whose retention ended before cutoff:
-- stored before it, and either of no incident, or of a resolved incident that resolved before
-- it and is not on hold (an open incident's evidence is kept). Per artifact: its audit row
-- (actor, retention.evidence, evidence:ID, detail with incident, kind, node, sha256, chunks,
-- bytes, why), its evidence_removals row, its chunks deleted. holds is locked in SHARE mode
-- first: a hold being placed waits for this transaction, and one placed before is seen.
CREATE FUNCTION vigil_evidence_expire(cutoff timestamptz, actor text, why text, max_rows int,
                                      OUT evidence_id bigint, OUT incident_id bigint,
                                      OUT chunks bigint, OUT bytes bigint, OUT audit_id bigint)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    LOCK TABLE holds IN SHARE MODE;
    FOR r IN
        SELECT e.id, e.agent_id, e.artifact, e.kind, e.node, e.sha256,
               vigil_evidence_incident(e.id) AS incident
          FROM evidence e
         WHERE e.stored_at < cutoff
           AND NOT EXISTS (SELECT 1 FROM evidence_removals x WHERE x.evidence_id = e.id)
         ORDER BY e.id
    LOOP
        CONTINUE WHEN r.incident IS NOT NULL AND (
            vigil_incident_held(r.incident)
            OR NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = r.incident
                           AND i.state IN ('resolved', 'closed') AND i.resolved_at < cutoff));
        SELECT count(*), coalesce(sum(octet_length(c.data)), 0) INTO chunks, bytes
          FROM evidence_chunks c WHERE c.agent_id = r.agent_id AND c.artifact = r.artifact;
        INSERT INTO audit_log (actor, action, subject, detail)
        VALUES (actor, 'retention.evidence', 'evidence:' || r.id,
                format('removed the content of artifact %s (incident %s, kind %s, node %s, '
                       'sha256 %s): chunks=%s bytes=%s; the vault row and its chain link stay; %s',
                       r.id, coalesce(r.incident::text, 'none'), r.kind, r.node,
                       encode(r.sha256, 'hex'), chunks, bytes, why))
        RETURNING id INTO audit_id;
        INSERT INTO evidence_removals (evidence_id, audit_id, chunks, bytes)
        VALUES (r.id, audit_id, chunks, bytes);
        DELETE FROM evidence_chunks c WHERE c.agent_id = r.agent_id AND c.artifact = r.artifact;
        evidence_id := r.id;
        incident_id := r.incident;
        RETURN NEXT;
        max_rows := max_rows - 1;
        EXIT WHEN max_rows <= 0;
    END LOOP;
END
$$;
