-- Idempotency keys belong to their submitter: the same key from someone else is another key
-- (and never tells them anything of the first request). Keys recorded before this know their
-- submitter from the request they created (its creator).
ALTER TABLE idempotency_keys ADD COLUMN submitter text NOT NULL DEFAULT '';
UPDATE idempotency_keys AS k
   SET submitter = lower(e.payload->>'created_by')
  FROM events AS e
 WHERE e.stream_id = k.ticket_id AND e.event_type = 'TicketCreated'
   AND e.payload->>'created_by' IS NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (submitter, key);
ALTER TABLE idempotency_keys ALTER COLUMN submitter DROP DEFAULT;
