"""The directory as a process reads it: the `directory` topic, folded from its first record.

`DirectoryFeed(settings)` reads every partition of the topic without a consumer group (nobody's
offsets move: each process keeps its own view, `desk_platform.feed`), from the beginning, into
`current` with the one fold of the directory's events (`desk_policies.directory`); a change the
portal publishes later is in `current` about half a second after. A record it cannot read (not
a CloudEvent, not JSON, a type that is no directory event, invalid data, an event about someone
the directory does not know) is logged with its position and skipped: no record stops the
feed.

Code that needs the directory asks `feed.current` at that moment. `follow_directory` makes the
feed one of a service's background loops and its `directory` readiness check; `directory_first`
makes a service's own HTTP routes answer 503 until the feed has caught up (before, `current`
would not yet know the people a request names).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import TopicPartition
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from desk_contracts.directory import DIRECTORY_EVENTS, DirectoryEvent
from desk_contracts.envelope import Envelope
from desk_contracts.topics import DIRECTORY
from desk_platform.feed import TopicFeed
from desk_platform.readiness import OPERATIONS
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.directory import Directory, DirectoryDraft

log = structlog.get_logger(__name__)


def event_of(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> DirectoryEvent:
    """The directory event a record of the topic carries; ValueError saying why it is none."""
    envelope = Envelope.from_kafka(key, value, headers)
    kind = DIRECTORY_EVENTS.get(envelope.type)
    if kind is None:
        raise ValueError(f"{envelope.type!r} is not an event of the directory")
    if envelope.schema_version != kind.schema_version:
        raise ValueError(
            f"{envelope.type} version {envelope.schema_version} (this reader knows version "
            f"{kind.schema_version})"
        )
    return kind.model_validate(dict(envelope.data))


class DirectoryFeed(TopicFeed):
    """A process's view of the directory, folded from the topic and kept up to date (module)."""

    skipped_event = "directory_record_skipped"

    def __init__(self, settings: Settings, client_id: str = "directory-feed") -> None:
        super().__init__(settings.kafka_bootstrap_servers, settings.topic(DIRECTORY), client_id)
        self.current = Directory()

    def fold(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Apply a fetched batch to the view (one copy of it for the lot), each record on its
        own: one that cannot be read is logged and skipped."""
        draft = DirectoryDraft(self.current)
        self.apply_each(batch, lambda r: draft.apply(event_of(r.key, r.value, r.headers)))
        self.current = draft.directory()

    def summary(self) -> str:
        """How many people and organisations the view holds, and the records skipped."""
        return (
            f"{len(self.current.people)} people, {len(self.current.organisations)} "
            f"organisations ({self.skipped} records skipped)"
        )


def follow_directory(runtime: ServiceRuntime) -> DirectoryFeed:
    """A feed for `runtime`'s service: one of its background loops and its `directory`
    readiness check (`/ready` fails until the feed has caught up)."""
    feed = DirectoryFeed(runtime.settings, client_id=f"{runtime.name}-directory")

    async def directory_feed(stop: asyncio.Event) -> None:
        await feed.run(stop)

    runtime.every(directory_feed)
    runtime.readiness.add("directory", feed.probe)
    return feed


class DirectoryFirst:
    """ASGI middleware: 503 (Retry-After: 1) on every route but `OPERATIONS` until the feed has
    caught up."""

    def __init__(self, app: ASGIApp, feed: DirectoryFeed) -> None:
        self.app = app
        self.feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        waiting = scope["type"] == "http" and not self.feed.caught_up
        if waiting and scope["path"] not in OPERATIONS:
            answer = JSONResponse(
                {"detail": "the service is still reading the directory: retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def directory_first(app: FastAPI, feed: DirectoryFeed) -> FastAPI:
    """`app`, answering 503 until `feed` has caught up (see `DirectoryFirst`)."""
    app.add_middleware(DirectoryFirst, feed=feed)
    return app
