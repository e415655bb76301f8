-- 012: operators as data (vigilctl operators add, revoke, rotate). Each operator gets an
-- Ed25519 signing public key beside its CURVE key, for approvals ('' = none registered yet:
-- operators from before this migration, until their keys are rotated or the configuration's
-- admin.signing_public_key fills it in).
--
-- Revocation stays what it was: revoked_at set, the row kept, so a revoked key can never be
-- registered again (public_key is unique over every row). Rotation revokes the old row and
-- inserts a new one with the same name and role. So that `vigilctl operators revoke NAME`
-- names one operator, a name belongs to at most one active operator. A signing key is unique
-- over every row too: one that was revoked cannot come back under another CURVE key.

ALTER TABLE operators ADD COLUMN signing_key text NOT NULL DEFAULT ''
    CHECK (signing_key = '' OR signing_key ~ '^[A-Za-z0-9+/]{43}=$');

-- Operators added in SQL before this migration may share a name: every active one but the
-- oldest (by id) gets its id appended, so the unique index below can be built; audited.
WITH renamed AS (
    UPDATE operators AS o SET name = o.name || '-' || o.id
    WHERE o.revoked_at IS NULL
      AND EXISTS (SELECT 1 FROM operators AS p
                  WHERE p.revoked_at IS NULL AND p.name = o.name AND p.id < o.id)
    RETURNING o.id, o.name)
INSERT INTO audit_log (actor, action, subject, detail)
SELECT 'coordinator', 'operator.rename', name,
       format('id=%s reason="another active operator had the same name (migration 012)"', id)
FROM renamed;

CREATE UNIQUE INDEX operators_active_name ON operators (name) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX operators_signing_key ON operators (signing_key) WHERE signing_key <> '';
