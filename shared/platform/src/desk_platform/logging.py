"""Structured logs with structlog: JSON lines in production, with ticket, event and correlation
ids bound from the message being handled (contextvars), so every line of a handler carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog


def configure_logging(service: str, fmt: str = "json", level: str = "info") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


@contextmanager
def log_context(
    *,
    ticket_id: str | None = None,
    event_id: str | None = None,
    correlation_id: str | None = None,
) -> Iterator[None]:
    """Bind the ids of the message being handled to every log line inside the block."""
    values = {
        name: value
        for name, value in (
            ("ticket_id", ticket_id),
            ("event_id", event_id),
            ("correlation_id", correlation_id),
        )
        if value
    }
    with structlog.contextvars.bound_contextvars(**values):
        yield
