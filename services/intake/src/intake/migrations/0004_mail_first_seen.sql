-- When the gateway first saw a message it deferred (451): deferral ends 15 minutes later.
CREATE TABLE mail_first_seen (
    message     text PRIMARY KEY,          -- the message's identity (Message-ID or content hash)
    first_seen  timestamptz NOT NULL
);
CREATE INDEX mail_first_seen_by_age ON mail_first_seen (first_seen);
