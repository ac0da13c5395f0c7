-- Lists for requesters: who is involved in each request (requester, creator, participants),
-- the priority's rank for sorting, and indexes so that one page of an organisation's requests
-- (sorted, searched, counted) stays fast with many thousands of them.
ALTER TABLE tickets
    ADD COLUMN created_by    text    NOT NULL DEFAULT '',
    ADD COLUMN involved      text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN priority_rank integer NOT NULL DEFAULT 0;
UPDATE tickets SET involved = ARRAY[requester_id];
CREATE INDEX tickets_by_organisation_updated ON tickets (organisation_id, updated_at DESC);
CREATE INDEX tickets_by_organisation_created ON tickets (organisation_id, created_at DESC);
CREATE INDEX tickets_by_involved ON tickets USING gin (involved);
CREATE INDEX tickets_by_key_lower ON tickets (lower(key));
