-- 010: a node name is bound to the key that enrolled it first. An agent that asks for another
-- name on re-enrollment keeps its name until an operator approves the change: the name it asked
-- for waits here ('' = none).

ALTER TABLE agents ADD COLUMN requested_node text NOT NULL DEFAULT '';
