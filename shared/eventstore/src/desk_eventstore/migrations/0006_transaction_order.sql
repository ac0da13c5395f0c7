-- The order in which readers of every event (the relay, a rebuild) take them: by the id of
-- the transaction that wrote them, then by position. An event is read once every transaction
-- with a lower id has ended (`pg_snapshot_xmin`), so one that commits late is never passed
-- over: whatever could still commit sorts after what was read. An event whose writer's id is
-- lower than that of its stream's previous event (a transaction that began writing before the
-- previous one, and appended after it committed) carries the previous event's id, so each
-- stream's events stay in version order. Events stored before this migration carry its id:
-- among themselves they keep their position order.
ALTER TABLE events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_transaction_order ON events (transaction_id, global_position);
