"""Desk policies as data: models validated at load, and the shipped policy files (pure)."""
