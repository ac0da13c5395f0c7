"""Workflow's use cases: open a ticket's stream, execute commands, read tickets."""
