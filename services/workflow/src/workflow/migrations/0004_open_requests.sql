-- Lists of open requests as the read model grows: a desk's history is mostly closed requests
-- (a million of them after a few years) while its open ones stay a few thousand, so every list
-- and count of open requests (a desk's, an agent's, an organisation's; the console's search
-- filtered to open ones) reads an index of the open requests only, newest change first, with
-- the desk for the reader's filter, instead of every request the desk, the agent or the
-- organisation ever had (bench/growth.py: a desk's open count read 1,000,000 index entries).
CREATE INDEX tickets_open_by_policy ON tickets (policy_id, updated_at DESC, ticket_id)
    WHERE category <> 'closed';
CREATE INDEX tickets_open_by_assignee ON tickets (assignee_id, updated_at DESC) INCLUDE (policy_id)
    WHERE category <> 'closed';
CREATE INDEX tickets_open_by_organisation ON tickets (organisation_id, updated_at DESC)
    INCLUDE (policy_id) WHERE category <> 'closed';
