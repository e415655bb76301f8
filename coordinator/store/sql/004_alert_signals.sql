-- 004: signals that do not come from an agent (Alertmanager's alerts) name their node
-- themselves, and each alert notification is remembered so a retried one is stored once.

-- NULL = the agent's node (agents.node), as before; set by sources without an agents row.
ALTER TABLE signals ADD COLUMN node text;
ALTER TABLE signal_latest ADD COLUMN node text;

-- As in 002, with the node carried along.
CREATE OR REPLACE FUNCTION signal_latest_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO signal_latest AS l (agent_id, name, labels, value, unit, state, ts, node)
    SELECT DISTINCT ON (agent_id, name, labels) agent_id, name, labels, value, unit, state, ts, node
      FROM new_rows
     ORDER BY agent_id, name, labels, ts DESC
    ON CONFLICT (agent_id, name, labels) DO UPDATE
       SET value = EXCLUDED.value, unit = EXCLUDED.unit, state = EXCLUDED.state, ts = EXCLUDED.ts,
           node = EXCLUDED.node
     WHERE l.ts <= EXCLUDED.ts;
    RETURN NULL;
END
$$;

-- One row per alert notification stored: Alertmanager resends a notification it could not
-- deliver and repeats firing ones every repeat_interval; (fingerprint, status, at) with "at"
-- the payload's startsAt (firing) or endsAt (resolved) — NULL-free: epoch when absent.
CREATE TABLE alert_notifications (
    fingerprint text NOT NULL,
    status      text NOT NULL CHECK (status IN ('firing', 'resolved')),
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fingerprint, status, at)
);
