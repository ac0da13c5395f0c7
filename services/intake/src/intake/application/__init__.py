"""Intake's use cases: a submission becomes a numbered request in the store (and so on Kafka)."""
