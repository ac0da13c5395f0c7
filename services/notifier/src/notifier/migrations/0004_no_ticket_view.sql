-- The notifier no longer keeps its own view of the requests: each ticket event carries the
-- request's state as workflow published it (desk_contracts.state), which addresses its messages.
DROP TABLE tickets;
