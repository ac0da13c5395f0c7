"""Intake's edges: the HTTP API (portal, in-app Support tab)."""
