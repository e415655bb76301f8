-- 016: a storm is one page (escalate.c, "Grouping"). Per-node incidents of one runbook that open
-- close together are paged as one group: the first one leads it and is the only one paged; the
-- others point at it and page nobody. Nodes that join later are told to those paged in one
-- 'grouped' message per group interval. A per-person cap holds back pages past
-- paging.max_pages_per_minute ('held'); each minute they are told in one 'summary' and become
-- 'summarised'. Neither held nor summarised rows are ever delivered by the notifier.

ALTER TABLE escalations
    ADD COLUMN group_leader  bigint REFERENCES incidents (id), -- NULL: pages on its own or leads
    ADD COLUMN group_told_at timestamptz, -- leader: members joined since are not yet told
    ADD COLUMN group_next_at timestamptz; -- leader: when they are (NULL: nothing due)
CREATE INDEX escalations_group ON escalations (group_leader) WHERE group_leader IS NOT NULL;

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('page', 'update', 'resolved', 'acknowledged', 'audience', 'deadline',
                    'report_due', 'grouped', 'summary'));
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'held', 'summarised'));
-- The cap's look-ups: a person's recent pages, and what is held for them.
CREATE INDEX notifications_target_recent ON notifications (target, created_at) WHERE kind = 'page';
CREATE INDEX notifications_held ON notifications (target, channel) WHERE status = 'held';
