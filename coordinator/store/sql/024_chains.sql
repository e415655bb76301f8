-- 024: chains of their own for what an investigator relies on besides the evidence vault
-- (issue 15, docs/forensics.md "Chains"): the audit log, the incident timelines and the command
-- reports. chain_links holds, per chain, one row per linked row of its table: its place (seq,
-- from 1), the row's id, prev_link and link = SHA-256(prev_link || canonical row). It is
-- append-only like the tables it covers, which stay untouched: the rows are linked after they
-- committed, by vigil_chain_pending (the coordinator calls it every second, and before every
-- verification and checkpoint), in id order, so no writer waits for a chain lock while it holds
-- others. The rows already there are linked here (the genesis): from now on every row commits
-- to every row before it. Signed checkpoints (common/checkpoint.h) hold every chain's head.
--
-- The canonical row: the chain's name, then every column as "<length>:<text>" ("-" for NULL),
-- times as Unix milliseconds, bytea as hex, jsonb as PostgreSQL prints it.

-- command_reports has no single-column key: a number of its own, in insertion order.
ALTER TABLE command_reports ADD COLUMN chain_id bigserial UNIQUE;

CREATE TABLE chain_links (
    chain     text NOT NULL CHECK (chain IN ('audit_log', 'incident_events', 'command_reports')),
    seq       bigint NOT NULL CHECK (seq >= 1),
    row_id    bigint NOT NULL,
    prev_link bytea NOT NULL CHECK (length(prev_link) = 32),
    link      bytea NOT NULL CHECK (length(link) = 32),
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, row_id),
    UNIQUE (chain, prev_link)  -- a chain cannot fork
);
CREATE TRIGGER chain_links_append_only
    BEFORE UPDATE OR DELETE ON chain_links
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER chain_links_no_truncate
    BEFORE TRUNCATE ON chain_links
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

CREATE FUNCTION vigil_chain_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '-' ELSE length(v) || ':' || v END
$$;

CREATE FUNCTION vigil_chain_ms(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM t) * 1000)::bigint::text
$$;

CREATE FUNCTION vigil_chain_audit_log(r audit_log) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('audit|' || vigil_chain_field(r.id::text) ||
                      vigil_chain_field(vigil_chain_ms(r.at)) || vigil_chain_field(r.actor) ||
                      vigil_chain_field(r.action) || vigil_chain_field(r.subject) ||
                      vigil_chain_field(r.detail), 'UTF8')
$$;

CREATE FUNCTION vigil_chain_incident_events(r incident_events) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('timeline|' || vigil_chain_field(r.id::text) ||
                      vigil_chain_field(r.incident_id::text) ||
                      vigil_chain_field(vigil_chain_ms(r.at)) || vigil_chain_field(r.kind) ||
                      vigil_chain_field(r.actor) || vigil_chain_field(r.text) ||
                      vigil_chain_field(r.data::text), 'UTF8')
$$;

CREATE FUNCTION vigil_chain_command_reports(r command_reports) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('reports|' || vigil_chain_field(r.chain_id::text) ||
                      vigil_chain_field(r.agent_id) || vigil_chain_field(r.seq::text) ||
                      vigil_chain_field(r.request_id) ||
                      vigil_chain_field(encode(r.nonce, 'hex')) || vigil_chain_field(r.step) ||
                      vigil_chain_field(r.exit_status::text) ||
                      vigil_chain_field(r.duration_ms::text) ||
                      vigil_chain_field(encode(r.output_sha256, 'hex')) ||
                      vigil_chain_field(r.truncated::text) || vigil_chain_field(r.reason) ||
                      vigil_chain_field(vigil_chain_ms(r.reported_at)) ||
                      vigil_chain_field(vigil_chain_ms(r.at)), 'UTF8')
$$;

-- The key column of each chained table.
CREATE FUNCTION vigil_chain_key(tbl text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE tbl WHEN 'command_reports' THEN 'chain_id' ELSE 'id' END
$$;

-- Links the committed rows of tbl not linked yet, oldest id first, and returns how many. Rows
-- are looked for among the newest 100,000 ids past the last linked one's window, so a pass
-- stays cheap on a large table; a transaction that commits that late is not one Vigil makes.
-- One pass at a time per chain (an advisory lock for this transaction only).
CREATE FUNCTION vigil_chain_pending(tbl text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    key text := vigil_chain_key(tbl);
    prev_seq bigint;
    prev bytea;
    floor_id bigint;
    r record;
    n bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7623191, CASE tbl WHEN 'audit_log' THEN 1
                                                    WHEN 'incident_events' THEN 2 ELSE 3 END);
    SELECT seq, link INTO prev_seq, prev FROM chain_links WHERE chain = tbl
        ORDER BY seq DESC LIMIT 1;
    SELECT coalesce(max(row_id), 0) - 100000 INTO floor_id FROM chain_links WHERE chain = tbl;
    prev_seq := coalesce(prev_seq, 0);
    prev := coalesce(prev, decode(repeat('00', 32), 'hex'));
    FOR r IN EXECUTE format(
        'SELECT t.%1$I AS row_id, %2$I(t) AS canonical FROM %3$I t'
        ' WHERE t.%1$I > $1 AND NOT EXISTS (SELECT 1 FROM chain_links l'
        '   WHERE l.chain = $2 AND l.row_id = t.%1$I) ORDER BY t.%1$I',
        key, 'vigil_chain_' || tbl, tbl) USING floor_id, tbl
    LOOP
        prev_seq := prev_seq + 1;
        INSERT INTO chain_links (chain, seq, row_id, prev_link, link)
            VALUES (tbl, prev_seq, r.row_id, prev, sha256(prev || r.canonical))
            RETURNING link INTO prev;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The genesis.
SELECT vigil_chain_pending('audit_log');
SELECT vigil_chain_pending('incident_events');
SELECT vigil_chain_pending('command_reports');

-- A chain checked whole: how many places, the first that breaks it (with why), its head. A row
-- written more than a minute ago and still not linked breaks it too (broken_seq 0): it was
-- written past the chain (the coordinator links every second).
CREATE FUNCTION vigil_chain_verify(tbl text, OUT rows bigint, OUT broken_seq bigint,
                                   OUT reason text, OUT head_seq bigint, OUT head_link bytea)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    key text := vigil_chain_key(tbl);
    unlinked bigint;
BEGIN
    SELECT count(*), max(seq) INTO rows, head_seq FROM chain_links WHERE chain = tbl;
    SELECT link INTO head_link FROM chain_links WHERE chain = tbl AND seq = head_seq;
    EXECUTE format($q$
        SELECT seq, CASE
            WHEN canonical IS NULL THEN 'row deleted: its place in the chain has no row'
            WHEN link <> sha256(prev_link || canonical)
                THEN 'link differs: the row was changed after it was linked'
            ELSE 'previous link missing: a place before it was removed' END
        FROM (SELECT l.seq, l.prev_link, l.link, %1$I(t) AS canonical,
                     lag(l.link) OVER (ORDER BY l.seq) AS before,
                     lag(l.seq) OVER (ORDER BY l.seq) AS before_seq
              FROM chain_links l LEFT JOIN %2$I t ON t.%3$I = l.row_id
              WHERE l.chain = $1) c
        WHERE canonical IS NULL OR link <> sha256(prev_link || canonical)
           OR prev_link <> coalesce(before, decode(repeat('00', 32), 'hex'))
           OR seq <> coalesce(before_seq, 0) + 1
        ORDER BY seq LIMIT 1 $q$, 'vigil_chain_' || tbl, tbl, key)
        INTO broken_seq, reason USING tbl;
    IF broken_seq IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %1$I t WHERE t.%2$I > (SELECT coalesce(min(row_id), 0)'
                       ' FROM chain_links WHERE chain = $1) AND %3$s < now() - interval ''1 minute'''
                       ' AND NOT EXISTS (SELECT 1 FROM chain_links l WHERE l.chain = $1'
                       ' AND l.row_id = t.%2$I)',
                       tbl, key, 'at')
            INTO unlinked USING tbl;
        IF unlinked > 0 THEN
            broken_seq := 0;
            reason := unlinked || ' row(s) written over a minute ago and not linked: written '
                      'past the chain';
        END IF;
    END IF;
    head_seq := coalesce(head_seq, 0);
    head_link := coalesce(head_link, decode(repeat('00', 32), 'hex'));
END
$$;
