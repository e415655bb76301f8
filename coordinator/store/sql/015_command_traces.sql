-- 015: what a command leaves behind (docs/remediation.md, "After an action"): when a command
-- reports done, the coordinator opens collections by itself in the same transaction — the
-- command's kept output (kind command_output) and the evidence kinds the node's catalog lists for
-- the action — so they reach the vault like any artifact. command_id links them to the command;
-- NULL for collections an operator asked for.
ALTER TABLE evidence_collections ADD COLUMN command_id text REFERENCES command_requests (id);
CREATE INDEX evidence_collections_command ON evidence_collections (command_id)
    WHERE command_id IS NOT NULL;

-- A sample measured while a remediation command ran on its node carries the command's request id
-- (Signal.command_id): the record shows what Vigil's own action disturbed, and the rule engine
-- lets no such sample raise a symptom. NULL for every other sample.
ALTER TABLE signals ADD COLUMN command_id text;
