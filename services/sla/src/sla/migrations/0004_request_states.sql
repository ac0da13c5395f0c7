-- sla keeps no copy of the ticket events any more: workflow publishes each request's state with
-- every event, and sla keeps what its clocks and timers read of it. Pre-release: the copies are
-- dropped, not converted.
DROP TABLE histories;

-- Each request's status and priority after each of its events (the clocks' timeline).
CREATE TABLE request_steps (
    ticket_id text        NOT NULL,
    version   integer     NOT NULL,
    at        timestamptz NOT NULL,  -- when the event of this version happened
    status    text        NOT NULL,
    priority  text        NOT NULL,
    PRIMARY KEY (ticket_id, version)
);

-- Each request's latest published state (desk_contracts.state.RequestState, as JSON): its desk,
-- type and key, and the waiting anchor and reminders the reminder and auto-close timers read.
CREATE TABLE request_states (
    ticket_id text    PRIMARY KEY,
    version   integer NOT NULL,
    state     jsonb   NOT NULL
);
