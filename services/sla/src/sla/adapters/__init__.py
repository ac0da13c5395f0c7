"""The sla service's edges: the Kafka handler of ticket events, the timer loop, the HTTP API."""
