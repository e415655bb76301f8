-- 014: whether runbook auto steps run by themselves (vigilctl automation on|off; docs/remediation.md,
-- "Runbook steps"). One row; every change also has its audit_log row, written in the same
-- statement.
CREATE TABLE automation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled    boolean NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO automation (enabled, changed_by, changed_at) VALUES (true, 'vigil', now());
