-- How many bytes of JSON (payload and metadata) each stream holds up to and including each
-- event, written by the append that inserts it: the store bounds a stream by reading its last
-- event (the primary key finds it), with no other table to write. Streams written before this
-- migration are counted once (jsonb's text, close to the compact JSON appends count).
ALTER TABLE events ADD COLUMN stream_bytes bigint;
UPDATE events AS e SET stream_bytes = counted.total
FROM (SELECT stream_id, stream_version,
             sum(octet_length(payload::text) + octet_length(metadata::text))
                 OVER (PARTITION BY stream_id ORDER BY stream_version) AS total
      FROM events) AS counted
WHERE e.stream_id = counted.stream_id AND e.stream_version = counted.stream_version;
