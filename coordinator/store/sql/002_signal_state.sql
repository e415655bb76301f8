-- 002: each sample's threshold state as the agent evaluated it (SignalState in the proto:
-- 0 none, 1 ok, 2 warning, 3 critical), and a node column so "latest per node" needs no join.

ALTER TABLE signals ADD COLUMN state smallint NOT NULL DEFAULT 0
    CHECK (state BETWEEN 0 AND 3);

-- The latest sample per series, for `vigilctl signals`: kept current by ingest
-- (INSERT ... ON CONFLICT DO UPDATE when newer), so a listing never scans history.
CREATE TABLE signal_latest (
    agent_id text NOT NULL,
    name     text NOT NULL,
    labels   jsonb NOT NULL DEFAULT '{}',
    value    double precision NOT NULL,
    unit     text NOT NULL DEFAULT '',
    state    smallint NOT NULL DEFAULT 0,
    ts       timestamptz NOT NULL,
    PRIMARY KEY (agent_id, name, labels)
);

-- Kept current from the rows each ingest statement (COPY included) inserted, once per
-- statement, not per row: an older sample never overwrites a newer one.
CREATE FUNCTION signal_latest_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO signal_latest AS l (agent_id, name, labels, value, unit, state, ts)
    SELECT DISTINCT ON (agent_id, name, labels) agent_id, name, labels, value, unit, state, ts
      FROM new_rows
     ORDER BY agent_id, name, labels, ts DESC
    ON CONFLICT (agent_id, name, labels) DO UPDATE
       SET value = EXCLUDED.value, unit = EXCLUDED.unit, state = EXCLUDED.state, ts = EXCLUDED.ts
     WHERE l.ts <= EXCLUDED.ts;
    RETURN NULL;
END
$$;

CREATE TRIGGER signals_latest
    AFTER INSERT ON signals
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION signal_latest_update();
