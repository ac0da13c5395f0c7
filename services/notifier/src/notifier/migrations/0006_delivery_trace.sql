-- The trace each message belongs to (the W3C traceparent of the event it tells about), so that
-- sending it, later and maybe by another replica, continues that trace.
ALTER TABLE deliveries ADD COLUMN traceparent text;
