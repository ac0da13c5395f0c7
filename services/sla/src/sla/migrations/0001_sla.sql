-- The sla service's copy of each ticket's events: the calculator's input.
CREATE TABLE histories (
    ticket_id      text    NOT NULL,
    version        integer NOT NULL,
    event_id       text    NOT NULL,
    event_type     text    NOT NULL,
    schema_version integer NOT NULL,
    payload        jsonb   NOT NULL,
    PRIMARY KEY (ticket_id, version)
);

-- Durable timers: armed after each event of a ticket (replacing the ticket's pending ones),
-- fired by any replica (FOR UPDATE SKIP LOCKED). timer_id is the deterministic command id.
CREATE TABLE timers (
    timer_id      uuid        PRIMARY KEY,
    ticket_id     text        NOT NULL,
    kind          text        NOT NULL,
    occurrence    text        NOT NULL,
    fire_at       timestamptz NOT NULL,
    armed_version integer     NOT NULL,
    clock         text,
    days_waiting  integer,
    fired_at      timestamptz
);
CREATE INDEX timers_due ON timers (fire_at) WHERE fired_at IS NULL;
CREATE INDEX timers_of_ticket ON timers (ticket_id) WHERE fired_at IS NULL;

-- Occurrences already fired, so a warning or breach is emitted once per clock and target.
CREATE TABLE fired_occurrences (
    ticket_id  text NOT NULL,
    occurrence text NOT NULL,
    PRIMARY KEY (ticket_id, occurrence)
);
