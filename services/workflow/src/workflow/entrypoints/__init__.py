"""Command-line entry points of the workflow package besides the service itself."""
