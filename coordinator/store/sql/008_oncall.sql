-- 008: on-call overrides (`vigilctl oncall override`): for [starts_at, ends_at) user_name is on
-- call for schedule instead of the rotation. Schedules and contacts live in the configuration,
-- so these are names, checked by the coordinator when the override is made. Among overlapping
-- overrides the newest (highest id) wins.

CREATE TABLE oncall_overrides (
    id          bigserial PRIMARY KEY,
    schedule    text NOT NULL CHECK (length(schedule) BETWEEN 1 AND 64),
    user_name   text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 64),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
-- What is in force at and after an instant.
CREATE INDEX oncall_overrides_ends ON oncall_overrides (ends_at);
