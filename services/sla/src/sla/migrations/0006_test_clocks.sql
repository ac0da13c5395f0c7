-- Test clocks (desk_contracts.testclocks): where they are enabled, requests living on a
-- controllable time. sla owns them: each clock's instant, and whether it is advancing.
CREATE TABLE test_clocks (
    clock_id     text        PRIMARY KEY,
    desk         text        NOT NULL,
    attached_to  text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    now          timestamptz NOT NULL,
    status       text        NOT NULL,
    advancing_to timestamptz,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL
);

-- The timers of a request on a test clock fire when its clock gets there, never by real time.
ALTER TABLE timers ADD COLUMN test_clock text;
CREATE INDEX timers_of_test_clock ON timers (test_clock, fire_at)
    WHERE fired_at IS NULL AND test_clock IS NOT NULL;
-- the real-time loop's index, without them (a clock frozen in the past keeps timers due)
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (fire_at) WHERE fired_at IS NULL AND test_clock IS NULL;

-- The commands an advancing clock fired and waits to see acted on (the request's state past
-- the version they were armed at) before it takes its next step; `until`: real time, then it
-- goes on without (a command workflow found stale changes nothing).
CREATE TABLE test_clock_waits (
    clock_id      text        NOT NULL,
    ticket_id     text        NOT NULL,
    armed_version integer     NOT NULL,
    until         timestamptz NOT NULL,
    PRIMARY KEY (clock_id, ticket_id, armed_version)
);
CREATE INDEX test_clock_waits_of_ticket ON test_clock_waits (ticket_id);
