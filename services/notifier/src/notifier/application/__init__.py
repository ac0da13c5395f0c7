"""The notifier's use cases: record the messages an event causes, then deliver them."""
