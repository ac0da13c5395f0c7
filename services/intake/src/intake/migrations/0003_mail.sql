-- E-mail gateway. What it knows of each request (from ticket-events) to thread replies and
-- check who may answer; kept by the consumer group intake-mail.ticket-events.
CREATE TABLE mail_tickets (
    ticket_id         text PRIMARY KEY,
    key               text NOT NULL,
    policy_id         text NOT NULL,
    requester_id      text NOT NULL,
    organisation_id   text NOT NULL,
    participants      text[] NOT NULL DEFAULT '{}',
    closed            boolean NOT NULL DEFAULT false,
    source_message_id text
);
CREATE INDEX mail_tickets_key ON mail_tickets (key);
CREATE INDEX mail_tickets_source ON mail_tickets (source_message_id)
    WHERE source_message_id IS NOT NULL;

-- Every message that became a comment or an answer, by Message-ID: a second delivery of the
-- same message does nothing (new requests are deduplicated by submit()'s idempotency key).
CREATE TABLE mail_messages (
    message_id  text PRIMARY KEY,
    outcome     text NOT NULL,
    ticket_id   text,
    received_at timestamptz NOT NULL
);

-- Per-sender counters in fixed windows: messages per hour, automatic answers per day.
CREATE TABLE mail_sender_counts (
    sender       text NOT NULL,
    kind         text NOT NULL,          -- message | answer
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    PRIMARY KEY (sender, kind, window_start)
);
