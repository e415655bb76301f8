-- 019: those paged for an incident are told when an automatic action of it ended (kind 'action',
-- round = the command's n: each told once by the notifications' unique key;
-- docs/remediation.md, "Runbook steps").
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('page', 'update', 'resolved', 'acknowledged', 'audience', 'deadline',
                    'report_due', 'grouped', 'summary', 'action'));
