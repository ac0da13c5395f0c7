-- The desk (policy id) each message is about, so that what the sender does with it is counted
-- by desk (`desk_notifications_*_total{desk}`). Rows recorded before have none (`unknown`).
ALTER TABLE deliveries ADD COLUMN policy_id text;
