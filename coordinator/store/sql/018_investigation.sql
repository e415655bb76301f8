-- 018: automatic investigation (docs/runbook-format.md, "investigate"): when an incident opens,
-- its runbook's investigate entries are collected from the incident's nodes as collections
-- linked to the incident, listed by `vigilctl incident show`. NULL for collections an operator
-- asked for or a command left (command_id).
ALTER TABLE evidence_collections ADD COLUMN incident_id bigint REFERENCES incidents (id);
CREATE INDEX evidence_collections_incident ON evidence_collections (incident_id)
    WHERE incident_id IS NOT NULL;
