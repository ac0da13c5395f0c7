-- Read model of the tickets (rebuilt from the streams if lost): lists, filters, dashboards.
CREATE TABLE tickets (
    ticket_id       text PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    policy_id       text NOT NULL,
    organisation_id text NOT NULL,
    requester_id    text NOT NULL,
    subject         text NOT NULL,
    status          text NOT NULL,
    category        text NOT NULL,
    expected_actor  text,
    priority        text NOT NULL,
    assignee_id     text,
    version         integer NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX tickets_by_organisation ON tickets (organisation_id, category);
CREATE INDEX tickets_by_actor ON tickets (policy_id, expected_actor, category);
