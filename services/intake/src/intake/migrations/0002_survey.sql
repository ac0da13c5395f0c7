-- Satisfaction-survey answers: one per request (workflow refuses a second one too). The row and
-- the `SurveySubmitted` event are written in one transaction.
CREATE TABLE survey_answers (
    ticket_id    text PRIMARY KEY,
    key          text NOT NULL,
    respondent   text NOT NULL,
    rating       integer NOT NULL,
    comment      text,
    event_id     uuid NOT NULL,
    answered_at  timestamptz NOT NULL
);
