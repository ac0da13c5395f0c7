-- Events a consumer could not apply (dead-lettered), and the later events of the same stream
-- parked behind them so that the stream's order is never broken; cleared by a re-drive.
CREATE TABLE parked (
    consumer   text        NOT NULL,
    stream_id  text        NOT NULL,
    event_id   text        NOT NULL,
    reason     text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_id, event_id)
);
