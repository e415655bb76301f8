-- 011: chunks of an artifact that never completed may be removed, and nothing else.
--
-- An agent asked for evidence can upload chunks and never send the last one; kept forever,
-- such uploads would let one agent fill the database. A chunk may now be deleted only when its
-- artifact has no last chunk (it never completed, so it was never verified), is not in the
-- vault, and its request is no longer pending (it failed or timed out). Every other change to
-- evidence_chunks is still refused, and the vault itself stays append-only. The coordinator
-- deletes such chunks after evidence.incomplete_grace, with an audit_log row per artifact.

CREATE FUNCTION vigil_evidence_chunks_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND NOT EXISTS (SELECT 1 FROM evidence_chunks c
                       WHERE c.agent_id = OLD.agent_id AND c.artifact = OLD.artifact AND c.last)
       AND NOT EXISTS (SELECT 1 FROM evidence e
                       WHERE e.agent_id = OLD.agent_id AND e.artifact = OLD.artifact)
       AND NOT EXISTS (SELECT 1 FROM evidence_targets t
                       WHERE t.collection_id = OLD.collection_id AND t.agent_id = OLD.agent_id
                         AND t.status = 'pending') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'evidence_chunks is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER evidence_chunks_append_only ON evidence_chunks;
CREATE TRIGGER evidence_chunks_append_only
    BEFORE UPDATE OR DELETE ON evidence_chunks
    FOR EACH ROW EXECUTE FUNCTION vigil_evidence_chunks_guard();
