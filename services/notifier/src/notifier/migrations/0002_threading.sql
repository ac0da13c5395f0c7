-- Messages carry HTML alternatives, their threading chain and the kind of Auto-Submitted they
-- are; `seq` orders a request's messages to one person (the thread they reply to).
ALTER TABLE deliveries ADD COLUMN seq bigserial;
ALTER TABLE deliveries ADD COLUMN kind text NOT NULL DEFAULT 'notification';  -- | automatic_reply
ALTER TABLE deliveries ADD COLUMN language text NOT NULL DEFAULT 'en';
ALTER TABLE deliveries ADD COLUMN html text;
ALTER TABLE deliveries ADD COLUMN sender text;  -- the desk's own address (replies go there)
ALTER TABLE deliveries ADD COLUMN reference_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE deliveries ALTER COLUMN auto_submitted DROP DEFAULT;
ALTER TABLE deliveries ALTER COLUMN auto_submitted DROP NOT NULL;
ALTER TABLE deliveries ALTER COLUMN auto_submitted TYPE text
    USING CASE WHEN auto_submitted THEN 'auto-generated' END;
ALTER TABLE deliveries ALTER COLUMN auto_submitted SET DEFAULT 'auto-generated';
CREATE INDEX deliveries_thread ON deliveries (ticket_id, recipient, seq);
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at, seq) WHERE status = 'pending';
