"""The SLA service's pure domain: calendar arithmetic, clocks and timers (no I/O, no clock)."""
