-- The event store of one service: its events table is also its outbox.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (stream_id, stream_version)
);
CREATE UNIQUE INDEX events_global_position ON events (global_position);

-- How far each relay has published (position acknowledged by the broker).
CREATE TABLE relay_checkpoints (
    relay     text   PRIMARY KEY,
    position  bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer has applied, so each is applied once.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    stream_id    text,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
