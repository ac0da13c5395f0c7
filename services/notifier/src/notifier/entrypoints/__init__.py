"""The notifier's command-line tools (run beside the service, never by it)."""
