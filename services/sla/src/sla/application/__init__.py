"""The sla service's use cases: project ticket events into timers, fire the due timers."""
