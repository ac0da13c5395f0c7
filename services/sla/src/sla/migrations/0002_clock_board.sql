-- Agents' board: each open ticket's clocks as of its last event (due instants, states,
-- reasons), so the board sorts by time left without replaying every history.
CREATE TABLE clock_board (
    ticket_id         text PRIMARY KEY,
    key               text NOT NULL,
    policy_id         text NOT NULL,
    priority          text NOT NULL,
    status            text NOT NULL,
    response_state    text,
    response_due      timestamptz,
    response_reason   text,
    resolution_state  text,
    resolution_due    timestamptz,
    resolution_reason text,
    next_due          timestamptz,  -- the earlier due instant of a running clock
    version           integer NOT NULL
);
CREATE INDEX clock_board_by_due ON clock_board (policy_id, next_due);
