-- 022: the status update rule (issue 18, docs/status-page.md). An operator's update (`vigilctl
-- update`, 021_status_updates.sql) goes to those paged and the severity's audiences (kind
-- 'human_update', round = the status_updates id); an interval without one reminds the incident's
-- owner (kind 'reminder', a sixth of the interval before its end) and the automatic update at its
-- end says that no human update was given. update_reminded: the current interval's reminder went
-- out (next_update_at is then the interval's end, else the reminder's time).
ALTER TABLE escalations ADD COLUMN update_reminded boolean NOT NULL DEFAULT false;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('page', 'update', 'resolved', 'acknowledged', 'audience', 'deadline',
                    'report_due', 'grouped', 'summary', 'action', 'reminder', 'human_update'));
