"""The notifier's edges: Kafka handlers, the SMTP sender loop, a local SMTP sink for dev/tests."""
