-- 028: an incident's state as append-only rows, as 027 did for commands, so that nothing the
-- running coordinator writes to incidents is an UPDATE: its login needs INSERT and SELECT on
-- them, no more.
--
-- incident_states holds every value an incident's mutable columns took, numbered n = 1, 2, ...
-- per incident; the row carries all of them (the incident as it stands after the change), not
-- a difference. incidents stays where readers read, but becomes the projection of the last row:
-- vigil_incident_state_next, a BEFORE INSERT trigger on incident_states, numbers the row and
-- applies it to incidents with the rights of the function's owner (SECURITY DEFINER). Nothing
-- else may UPDATE incidents (a guard refuses an UPDATE from outside a trigger), nor DELETE or
-- TRUNCATE it. Opening an incident stays an INSERT into incidents.
--
-- An incident's first row (n = 1) is written by an AFTER INSERT trigger on incidents, not by the
-- statement that opens it: every INSERT INTO incidents (the coordinator's, and the tests' and
-- tools' own SQL) then leaves a complete history, in the same statement.
--
-- Writers of one incident take a transaction advisory lock on its id (vigil_incident_lock)
-- before they read it, instead of a row lock, which needs UPDATE on the table. The trigger takes
-- it too, so rows inserted by hand are numbered and applied in turn. The coordinator's lookup
-- of a fingerprint's incident first takes vigil_incident_fingerprint_lock (store_incidents.c).
-- Classes: 024 uses 7623191, 027 (store_commands.c) 7623192.

CREATE TABLE incident_states (
    incident_id     bigint NOT NULL REFERENCES incidents (id),
    n               integer NOT NULL CHECK (n >= 1),
    severity        smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    state           text NOT NULL
                    CHECK (state IN ('detected', 'acknowledged', 'mitigated', 'resolved',
                                     'closed')),
    title           text NOT NULL,
    scope           jsonb NOT NULL,
    response_due    timestamptz NOT NULL,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    updated_at      timestamptz NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, n)
);

-- The incidents there are: their values as they stand, as their first row.
INSERT INTO incident_states (incident_id, n, severity, state, title, scope, response_due,
                             acknowledged_at, resolved_at, updated_at)
    SELECT id, 1, severity, state, title, scope, response_due, acknowledged_at, resolved_at,
           updated_at
      FROM incidents ORDER BY id;

-- Ids below 2^31 (all of them, in practice) get a key each; beyond, two ids may share one,
-- which only makes one writer wait for the other.
CREATE FUNCTION vigil_incident_lock(incident bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(7623193, (incident % 2147483648)::integer)
$$;

CREATE FUNCTION vigil_incident_fingerprint_lock(fingerprint text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(7623194, hashtext(fingerprint))
$$;

CREATE FUNCTION vigil_incident_state_next() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM vigil_incident_lock(NEW.incident_id);
    SELECT coalesce(max(s.n), 0) + 1 INTO NEW.n FROM incident_states s
     WHERE s.incident_id = NEW.incident_id;
    -- The first row (the incident's own values) changes nothing.
    UPDATE incidents i
       SET severity = NEW.severity, state = NEW.state, title = NEW.title, scope = NEW.scope,
           response_due = NEW.response_due, acknowledged_at = NEW.acknowledged_at,
           resolved_at = NEW.resolved_at, updated_at = NEW.updated_at
     WHERE i.id = NEW.incident_id
       AND (i.severity, i.state, i.title, i.scope, i.response_due, i.acknowledged_at,
            i.resolved_at, i.updated_at)
           IS DISTINCT FROM (NEW.severity, NEW.state, NEW.title, NEW.scope, NEW.response_due,
                             NEW.acknowledged_at, NEW.resolved_at, NEW.updated_at);
    RETURN NEW;  -- a missing incident: the foreign key refuses the row
END
$$;

CREATE FUNCTION vigil_incident_opened() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_states (incident_id, severity, state, title, scope, response_due,
                                 acknowledged_at, resolved_at, updated_at)
    VALUES (NEW.id, NEW.severity, NEW.state, NEW.title, NEW.scope, NEW.response_due,
            NEW.acknowledged_at, NEW.resolved_at, NEW.updated_at);
    RETURN NULL;
END
$$;

-- Only vigil_incident_state_next changes incidents: an UPDATE from outside a trigger (a login
-- that may still UPDATE it: the owner, a superuser) is refused, and nothing removes one.
CREATE FUNCTION vigil_incidents_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'incidents follows incident_states: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER incidents_guard
    BEFORE UPDATE OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION vigil_incidents_guard();
CREATE TRIGGER incidents_no_truncate
    BEFORE TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_incidents_guard();
CREATE TRIGGER incidents_opened
    AFTER INSERT ON incidents
    FOR EACH ROW EXECUTE FUNCTION vigil_incident_opened();
CREATE TRIGGER incident_states_next
    BEFORE INSERT ON incident_states
    FOR EACH ROW EXECUTE FUNCTION vigil_incident_state_next();
CREATE TRIGGER incident_states_append_only
    BEFORE UPDATE OR DELETE ON incident_states
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER incident_states_no_truncate
    BEFORE TRUNCATE ON incident_states
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

-- As in 026, with the incident's advisory lock instead of a row lock (FOR NO KEY UPDATE needs
-- UPDATE on incidents): two operators at once, the second waits, then finds the first one's
-- row. The existence check comes after the lock.
CREATE OR REPLACE FUNCTION vigil_hold_set(incident bigint, hold boolean, by_actor text,
                                          by_name text, why text,
                                          OUT outcome text, OUT hold_id bigint,
                                          OUT at timestamptz, OUT actor text, OUT reason text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM vigil_incident_lock(incident);
    PERFORM 1 FROM incidents i WHERE i.id = incident;
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
