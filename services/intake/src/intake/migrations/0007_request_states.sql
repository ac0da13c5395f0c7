-- The e-mail gateway no longer folds ticket events into a view of its own (mail_tickets): it keeps
-- the state workflow published with the latest event of each request (RequestState, as JSON),
-- upserted by the consumer group intake-mail.ticket-events when its version is newer.
DROP TABLE mail_tickets;
CREATE TABLE request_states (
    ticket_id         text PRIMARY KEY,
    key               text NOT NULL,
    source_message_id text,             -- the opening mail's Message-ID, lower-cased
    version           integer NOT NULL,
    state             jsonb NOT NULL
);
CREATE INDEX request_states_key ON request_states (key);
CREATE INDEX request_states_source ON request_states (source_message_id)
    WHERE source_message_id IS NOT NULL;

-- Requests intake created and workflow has not published yet are found by their TicketCreated
-- in intake's own store: by key and by the opening Message-ID (the stream id is the ticket id).
CREATE INDEX events_created_key ON events ((payload->>'key'))
    WHERE event_type = 'TicketCreated';
CREATE INDEX events_created_source ON events ((lower(payload->>'source_message_id')))
    WHERE event_type = 'TicketCreated';
