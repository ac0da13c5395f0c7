-- How many bytes of JSON (payload and metadata) each stream holds, kept by every append in its
-- own transaction, so the store bounds a stream without summing it. Streams written before
-- this migration are counted here once (jsonb's text, close to the compact JSON appends count).
CREATE TABLE stream_sizes (
    stream_id text   PRIMARY KEY,
    bytes     bigint NOT NULL
);
INSERT INTO stream_sizes (stream_id, bytes)
SELECT stream_id, sum(octet_length(payload::text) + octet_length(metadata::text))
FROM events GROUP BY stream_id;
