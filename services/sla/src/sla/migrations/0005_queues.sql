-- The agents' queues read the board alone: what a queue row shows and filters on, from the
-- request's published state (subject, category, who is expected to act, assignee, group,
-- requester, when it was created and last changed), and the clocks' warning instants and the
-- business seconds left on the most urgent clock (running or paused) when the row was written,
-- so that paused clocks sort too.
ALTER TABLE clock_board
    ADD COLUMN subject            text,
    ADD COLUMN category           text,        -- open | waiting | closed
    ADD COLUMN expected_actor     text,
    ADD COLUMN assignee_id        text,
    ADD COLUMN group_id           text,
    ADD COLUMN requester_id       text,
    ADD COLUMN created_at         timestamptz,
    ADD COLUMN updated_at         timestamptz,
    ADD COLUMN response_warning   timestamptz,
    ADD COLUMN resolution_warning timestamptz,
    ADD COLUMN next_warning       timestamptz,  -- the earlier warning instant of a running clock
    ADD COLUMN remaining_s        bigint;       -- business seconds left, most urgent clock

-- Rows already there take what the state says; their warnings and time left are computed by
-- the service when it starts (`sla.application.timers.complete_board`): SQL has no calendar.
UPDATE clock_board AS b SET
    subject        = s.state->>'subject',
    category       = s.state->>'category',
    expected_actor = s.state->>'expected_actor',
    assignee_id    = s.state->>'assignee_id',
    group_id       = s.state->>'group_id',
    requester_id   = s.state->>'requester_id',
    created_at     = (s.state->>'created_at')::timestamptz,
    updated_at     = (s.state->>'updated_at')::timestamptz
FROM request_states AS s
WHERE s.ticket_id = b.ticket_id;

-- The queues: a desk's requests not closed, the most urgent first, whole or by who acts,
-- whose they are, their status or category.
CREATE INDEX clock_board_queue ON clock_board (policy_id, next_due, remaining_s, key)
    WHERE category <> 'closed';
CREATE INDEX clock_board_by_category ON clock_board (policy_id, category, next_due);
CREATE INDEX clock_board_by_assignee ON clock_board (policy_id, assignee_id, next_due);
CREATE INDEX clock_board_by_actor ON clock_board (policy_id, expected_actor, next_due);
CREATE INDEX clock_board_by_status ON clock_board (policy_id, status, next_due);
