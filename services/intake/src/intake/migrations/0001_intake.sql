-- Request keys: one counter per type prefix (SPT-1001, SPT-1002, ...), gap-free among commits.
CREATE TABLE key_sequences (
    prefix text PRIMARY KEY,
    last   integer NOT NULL
);

-- A retried submission (same Idempotency-Key or e-mail Message-ID) returns the first answer.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    ticket_id    text NOT NULL,
    ticket_key   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
