"""Workflow's edges: the HTTP API for agents and requesters, and the Kafka handlers."""
