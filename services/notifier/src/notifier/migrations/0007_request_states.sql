-- The latest state workflow published of each request (desk_contracts.state.RequestState, as
-- JSON), kept as its ticket events pass: the records of `sla-events` carry no request, and the
-- warnings and breaches are addressed and worded from it. Only kept, never folded.
-- The requests whose events passed before this migration are not filled in here (SQL cannot read
-- Kafka): `python -m notifier.entrypoints.keep_states` does it once from the topic; until then
-- their SLA events wait for their next ticket event (and are dropped once two days old).
CREATE TABLE request_states (
    ticket_id text    PRIMARY KEY,
    version   integer NOT NULL,
    state     jsonb   NOT NULL
);

-- SLA warnings and breaches that came before the request's state (at the version their timer
-- was armed at) was kept: set aside with the reason, then recorded in their order as soon as it
-- is. `failed` says why recording one failed (e.g. an unknown desk): the request's later ones
-- wait behind it.
CREATE TABLE sla_events_waiting (
    seq            bigserial   PRIMARY KEY,
    event_id       text        NOT NULL UNIQUE,
    ticket_id      text        NOT NULL,
    armed_version  integer     NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    payload        jsonb       NOT NULL,
    traceparent    text,
    reason         text        NOT NULL,
    published_at   timestamptz NOT NULL,  -- when sla published it (the record's ce_time)
    since          timestamptz NOT NULL DEFAULT now(),
    failed         text
);
CREATE INDEX sla_events_waiting_ticket ON sla_events_waiting (ticket_id, seq);
