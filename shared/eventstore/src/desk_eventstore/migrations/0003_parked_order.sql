-- The order in which a stream's events were parked: a re-drive releases them in this order.
ALTER TABLE parked ADD COLUMN seq bigserial;
CREATE INDEX parked_by_stream ON parked (consumer, stream_id, seq);
