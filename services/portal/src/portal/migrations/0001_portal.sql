-- The portal's read model of its own directory events (who is who), and its private tables:
-- credentials, single-use links, sessions, sign-in failures, API tokens. Secrets are stored
-- hashed (passwords with Argon2, links, sessions and API tokens with SHA-256 of a random value).
CREATE TABLE organisations (
    organisation_id text PRIMARY KEY,
    name            text NOT NULL,
    domains         text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE people (
    email           text PRIMARY KEY,
    name            text NOT NULL,
    phone           text,
    language        text NOT NULL DEFAULT 'en',
    date_format     text NOT NULL DEFAULT '%Y-%m-%d',
    organisation_id text REFERENCES organisations,
    -- invited (by staff), registered (alone), active (address proved), deactivated
    status          text NOT NULL,
    activated       boolean NOT NULL DEFAULT false,
    roles           jsonb NOT NULL DEFAULT '{}',  -- desk id -> [roles]
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX people_of_organisation ON people (organisation_id);

CREATE TABLE credentials (
    email         text PRIMARY KEY REFERENCES people,
    password_hash text NOT NULL,
    changed_at    timestamptz NOT NULL
);

-- single-use, expiring links: activation, e-mail confirmation, reset, sign-in by link
CREATE TABLE links (
    digest     bytea PRIMARY KEY,
    email      text NOT NULL REFERENCES people,
    purpose    text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX links_of_person ON links (email, purpose);

CREATE TABLE sessions (
    digest     bytea PRIMARY KEY,
    email      text NOT NULL REFERENCES people,
    csrf       text NOT NULL,
    via        text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_of_person ON sessions (email);

-- failed sign-ins per key (an address as typed, or a client address), in a sliding window
CREATE TABLE sign_in_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    first_at     timestamptz NOT NULL,
    locked_until timestamptz
);

CREATE TABLE api_tokens (
    token_id     uuid PRIMARY KEY,
    email        text NOT NULL REFERENCES people,
    label        text NOT NULL,
    digest       bytea NOT NULL UNIQUE,
    scope        text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_of_person ON api_tokens (email);
