-- 027: a command's state as append-only rows (docs/remediation.md, "Commands"), so that nothing
-- the running coordinator writes to the command tables is an UPDATE: its login needs INSERT and
-- SELECT on them, no more.
--
-- command_states holds every state a request took, numbered n = 1, 2, ... per request, with the
-- state it left (prev_state, NULL for the first) and who moved it. command_current is the
-- projection of the last row of each request, for reads; the coordinator never writes it.
-- vigil_command_state_next, a BEFORE INSERT trigger on command_states, keeps it: it runs as the
-- owner of the function (SECURITY DEFINER), so the coordinator's login needs no UPDATE on
-- anything. For each new row it locks the request's command_current row (FOR UPDATE: concurrent
-- writers of one request wait for each other, as they waited on the row of command_requests
-- before), then
--   - the request has no current row: this is its first state (prev_state must be NULL);
--   - prev_state given: compare-and-set, the move applies only if the current state is
--     prev_state (what "UPDATE ... WHERE state = $from" did);
--   - prev_state NULL: forward only, the move applies only if vigil_command_state_rank rises
--     (how reports fold: a late accepted never undoes a done).
-- A move that applies updates command_current and stores the row with its n and prev_state; one
-- that does not makes the trigger return NULL: the INSERT inserts nothing and its RETURNING
-- yields no row, so a statement that chains its audit and timeline rows on it writes none.
--
-- A request's first row is inserted by the statement that inserts the request (store_commands.c),
-- not by a trigger on command_requests: a request issued at once (an auto action) takes its
-- pending and issued rows in that one statement, in that order.
--
-- command_requests keeps the fields its hash covers and becomes append-only like the rest of
-- the record; its state column goes.

CREATE TABLE command_states (
    request_id text NOT NULL REFERENCES command_requests (id),
    n          integer NOT NULL CHECK (n >= 1),
    state      text NOT NULL
               CHECK (state IN ('pending', 'issued', 'accepted', 'started', 'done', 'failed',
                                'refused', 'lost', 'cancelled', 'expired')),
    prev_state text
               CHECK (prev_state IN ('pending', 'issued', 'accepted', 'started', 'done',
                                     'failed', 'refused', 'lost', 'cancelled', 'expired')),
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, n),
    CHECK ((n = 1) = (prev_state IS NULL))
);

CREATE TABLE command_current (
    request_id text PRIMARY KEY REFERENCES command_requests (id),
    state      text NOT NULL,
    n          integer NOT NULL
);

-- The requests there are: their state as it stands, as their first row.
INSERT INTO command_states (request_id, n, state, prev_state, actor)
    SELECT id, 1, state, NULL, 'migration' FROM command_requests ORDER BY n;
INSERT INTO command_current (request_id, state, n)
    SELECT request_id, state, n FROM command_states;

CREATE FUNCTION vigil_command_state_next() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cur command_current%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM command_current WHERE request_id = NEW.request_id FOR UPDATE;
    IF NOT FOUND THEN
        IF NEW.prev_state IS NOT NULL THEN
            RETURN NULL;  -- compared with a state the request never had
        END IF;
        INSERT INTO command_current (request_id, state, n) VALUES (NEW.request_id, NEW.state, 1);
        NEW.n := 1;
        RETURN NEW;
    END IF;
    IF NEW.prev_state IS NULL THEN
        IF vigil_command_state_rank(NEW.state) <= vigil_command_state_rank(cur.state) THEN
            RETURN NULL;
        END IF;
    ELSIF NEW.prev_state <> cur.state THEN
        RETURN NULL;
    END IF;
    UPDATE command_current SET state = NEW.state, n = cur.n + 1
     WHERE request_id = NEW.request_id;
    NEW.n := cur.n + 1;
    NEW.prev_state := cur.state;
    RETURN NEW;
END
$$;

-- Only vigil_command_state_next writes command_current: a write from outside a trigger (a login
-- that may INSERT into every table) is refused, and nothing deletes from it.
CREATE FUNCTION vigil_command_current_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'command_current follows command_states: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER command_current_guard
    BEFORE INSERT OR UPDATE ON command_current
    FOR EACH ROW EXECUTE FUNCTION vigil_command_current_guard();
CREATE TRIGGER command_current_no_delete
    BEFORE DELETE ON command_current
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_current_no_truncate
    BEFORE TRUNCATE ON command_current
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_states_next
    BEFORE INSERT ON command_states
    FOR EACH ROW EXECUTE FUNCTION vigil_command_state_next();
CREATE TRIGGER command_states_append_only
    BEFORE UPDATE OR DELETE ON command_states
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_states_no_truncate
    BEFORE TRUNCATE ON command_states
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

-- The expiry scan's requests: waiting for approvals, or issued with no report yet.
CREATE INDEX command_current_waiting ON command_current (state)
    WHERE state IN ('pending', 'issued');

-- A request no longer changes at all.
DROP TRIGGER command_requests_guard ON command_requests;
DROP FUNCTION vigil_command_requests_guard();
CREATE TRIGGER command_requests_append_only
    BEFORE UPDATE OR DELETE ON command_requests
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
DROP INDEX command_requests_waiting;
ALTER TABLE command_requests DROP COLUMN state;
