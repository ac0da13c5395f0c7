-- Search over the requests (the agents' console): each request's description and the texts
-- people wrote on it since (every comment, public and internal, and the comment or reason a
-- command carries: `workflow.application.tickets.search_texts`), oldest first, kept up to
-- 500,000 characters; a search vector over key, subject, description and those texts with the
-- English and the French dictionaries (a word is found by either stemming), and the indexes
-- the search's filters use.
ALTER TABLE tickets
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN comments    text NOT NULL DEFAULT '';

-- the requests already in the read model: their texts from their streams, as save_view and
-- workflow.entrypoints.rebuild write them
UPDATE tickets AS t SET description = coalesce(e.payload->>'description', '')
FROM events AS e
WHERE e.stream_id = t.ticket_id AND e.stream_version = 1;

UPDATE tickets AS t SET comments = left(written.texts, 500000)
FROM (
    SELECT e.stream_id, string_agg(x.text, E'\n' ORDER BY e.stream_version, x.n) AS texts
    FROM events AS e,
         LATERAL (VALUES (1, e.payload->>'body'), (2, e.payload->>'comment'),
                         (3, e.payload->>'reason')) AS x(n, text)
    WHERE e.stream_version > 1 AND x.text ~ '\S'
    GROUP BY e.stream_id
) AS written
WHERE written.stream_id = t.ticket_id;

-- A word is found whatever its case: the text search parser lowers letters by the database's
-- LC_CTYPE, only ASCII ones under the C locale, so capitals with accents (É, À, Ç, Œ...) are
-- lowered first here, on the texts and on what is searched for alike (`tickets_search_fold`).
CREATE FUNCTION tickets_search_fold(body text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN translate(body, 'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞŒŸ', 'àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþœÿ');

-- A tsvector holds at most 1 MB of lexemes and positions, and one request's texts may be far
-- longer: each text is cut to a number of characters that keeps its UTF-8 bytes within twice
-- its `budget` (fewer characters when they are multi-byte), so that the vector of the largest
-- request, through both dictionaries, stays well under the limit (about 400 kB at worst).
CREATE FUNCTION tickets_search_text(body text, budget integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN tickets_search_fold(left(body,
        (budget::bigint * budget / greatest(octet_length(left(body, budget)), budget))::int));

-- One text's words, stemmed by the English and by the French dictionary, with their weight.
CREATE FUNCTION tickets_search_words(body text, weight "char") RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN setweight(to_tsvector('english', body) || to_tsvector('french', body), weight);

-- The key and the subject weigh most, then the description (its first 50,000 characters), then
-- what people wrote (the first 150,000 characters, the oldest).
ALTER TABLE tickets ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', key), 'A')
    || tickets_search_words(tickets_search_text(subject, 1000), 'A')
    || tickets_search_words(tickets_search_text(description, 50000), 'B')
    || tickets_search_words(tickets_search_text(comments, 150000), 'C')
) STORED;

CREATE INDEX tickets_search ON tickets USING gin (search);
-- a search answers the most recently changed matches: a common word's are read newest first
CREATE INDEX tickets_by_updated ON tickets (updated_at, ticket_id);
CREATE INDEX tickets_by_policy_created ON tickets (policy_id, created_at);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id);
-- a desk's requests in one status, newest first: words common to most requests searched
-- within a status read that status's rows only, not the whole desk's
CREATE INDEX tickets_by_status ON tickets (policy_id, status, updated_at DESC);
