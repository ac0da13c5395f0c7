-- What the notifier knows of each request, to address and word its messages.
CREATE TABLE tickets (
    ticket_id       text PRIMARY KEY,
    key             text NOT NULL,
    policy_id       text NOT NULL,
    subject         text NOT NULL,
    requester_id    text NOT NULL,
    created_by      text NOT NULL,
    channel         text NOT NULL,
    language        text NOT NULL,
    participants    text[] NOT NULL DEFAULT '{}',
    muted           text[] NOT NULL DEFAULT '{}',
    assignee_id     text,
    first_message_id text
);

-- Each message is recorded before it is sent and marked after: one row per (event, recipient).
CREATE TABLE deliveries (
    delivery_key    text PRIMARY KEY,          -- event id + '/' + recipient
    event_id        text NOT NULL,
    ticket_id       text NOT NULL,
    recipient       text NOT NULL,
    message_id      text NOT NULL UNIQUE,
    in_reply_to     text,
    subject         text NOT NULL,
    body            text NOT NULL,
    auto_submitted  boolean NOT NULL DEFAULT true,
    status          text NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
