-- Every record a consumer dead-lettered, or a relay set aside, with the reason: what
-- `redrive list` shows. A consumer's row is resolved when the event is applied after all (a
-- re-drive, or a retry that passed) or dropped by a re-drive; a relay's row stays until an
-- operator deals with the event.
CREATE TABLE dead_letters (
    origin           text        NOT NULL,  -- consumer group, or relay name
    event_id         text        NOT NULL,
    stream_id        text,
    reason           text        NOT NULL,
    times            integer     NOT NULL DEFAULT 1,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    resolution       text,
    PRIMARY KEY (origin, event_id)
);
CREATE INDEX dead_letters_unresolved ON dead_letters (dead_lettered_at) WHERE resolved_at IS NULL;
