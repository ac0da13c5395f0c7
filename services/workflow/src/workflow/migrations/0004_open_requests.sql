-- Lists as the read model grows: a desk's history is mostly closed requests (a million of them
-- after a few years) while its open ones stay a few thousand, so every list and count of open
-- requests (a desk's, an agent's, an organisation's; the console's search filtered to open
-- ones, by words too) reads an index of the open requests only, newest change first, with the
-- desk for the reader's filter, instead of every request the desk, the agent, the organisation
-- or the word ever had (bench/growth.py: a desk's open count read 1,000,000 index entries, a
-- word among open requests the 125,000 postings of every request holding it).
CREATE INDEX tickets_open_by_policy ON tickets (policy_id, updated_at DESC, ticket_id)
    WHERE category <> 'closed';
CREATE INDEX tickets_open_by_assignee ON tickets (assignee_id, updated_at DESC) INCLUDE (policy_id)
    WHERE category <> 'closed';
-- an organisation's (and a customer's own, within it) in the lists' order, ties included: its
-- page is read in order and stops after it, whatever the planner guesses of how many match
CREATE INDEX tickets_open_by_organisation
    ON tickets (organisation_id, updated_at DESC, ticket_id DESC) INCLUDE (policy_id)
    WHERE category <> 'closed';
CREATE INDEX tickets_open_search ON tickets USING gin (search) WHERE category <> 'closed';

-- An organisation's list in every state, searched by words of the subject, is counted from the
-- index alone (no visit to the rows of its closed requests, scattered over the whole table):
-- the order of tickets_by_organisation_updated, which it replaces, with what the filters read.
-- A store rebuilt since 0002 holds that index under the name the rebuild's copy gave it
-- (`workflow.entrypoints.rebuild`: LIKE ... INCLUDING ALL), which is then left as it is.
CREATE INDEX tickets_by_organisation_listed
    ON tickets (organisation_id, updated_at DESC, ticket_id DESC)
    INCLUDE (policy_id, category, subject);
DROP INDEX IF EXISTS tickets_by_organisation_updated;
