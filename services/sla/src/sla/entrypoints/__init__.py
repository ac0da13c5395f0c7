"""Command-line entry points of the sla package besides the service itself."""
