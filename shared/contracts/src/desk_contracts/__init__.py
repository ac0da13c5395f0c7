"""Shared contracts: event payloads, CloudEvents envelope, topic names, upcasters (pure)."""
