-- 025: two more channels (docs/notifications.md): 'sms', a Twilio-compatible Messages API to a
-- contact's phone, and 'ticket', an issue filed in a tracker (GitHub Issues or Jira) for the
-- severities paging.tickets.severities names (default SEV4: "standard bug tracking process").
--
-- A ticket is one notification row (kind 'audience', target 'tickets', channel 'ticket'), so the
-- table's unique key inserts it once per incident, and the notifier retries it like any other.
-- When the tracker answers 2xx, the notifier stores the created issue's link here, in the same
-- statement that marks the row sent, together with a timeline note carrying {"ticket": URL}
-- (vigilctl incident show's "ticket"). A row found here is never filed again, whatever becomes
-- of its notification row: "the stored link says it was filed".

ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('slack', 'webhook', 'email', 'pagerduty', 'sms', 'ticket'));

CREATE TABLE incident_tickets (
    incident_id     bigint PRIMARY KEY REFERENCES incidents (id),
    tracker         text NOT NULL CHECK (tracker IN ('github', 'jira')),
    url             text NOT NULL,   -- GitHub's html_url, or {base_url}/browse/{key} for Jira
    issue_key       text NOT NULL,   -- GitHub's issue number, or Jira's key (OPS-12)
    notification_id bigint NOT NULL REFERENCES notifications (id),
    filed_at        timestamptz NOT NULL
);
