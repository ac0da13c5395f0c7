-- Canned replies: texts a desk's agents insert into a reply, per desk and language, written by
-- the desk's leads; `{key}`, `{subject}`... stand for the request's fields (portal.domain.canned).
CREATE TABLE canned_replies (
    reply_id   uuid        PRIMARY KEY,
    policy_id  text        NOT NULL,
    language   text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    changed_by text        NOT NULL,
    changed_at timestamptz NOT NULL,
    UNIQUE (policy_id, language, title)
);
