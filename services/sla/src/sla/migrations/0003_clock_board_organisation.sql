-- Whose request each board row is, so that a customer reads the clocks of their own
-- organisation's requests only, and the key, so that clocks are found by key as well as by id.
-- Rows already there take the organisation from the TicketCreated their history keeps.
ALTER TABLE clock_board ADD COLUMN organisation_id text;
UPDATE clock_board AS b SET organisation_id = h.payload->>'organisation_id'
FROM histories AS h
WHERE h.ticket_id = b.ticket_id AND h.version = 1;
CREATE INDEX clock_board_by_key ON clock_board (key);
