"""What time it is for a request: the real time, or its test clock's (`desk_contracts.testclocks`).

Where test clocks are enabled (`TEST_CLOCKS=true`, refused with `DESK_ENV=production` by the
settings), each process follows the `test-clocks` topic whole (`TestClockFeed`, a
`desk_platform.feed`) into a `TestClocks` view: the latest state of every clock. Code that needs
"now" for a request asks `RequestTime.now(test_clock)` with the clock the request lives on
(`None`: the real clock). A clock only moves forward, so an instant learnt on the way (a timer
sla fired at the clock's `due_at`) is kept when it is later than what the topic said yet
(`TestClocks.reached`): a command never finds its clock behind the instant it was fired at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from aiokafka import TopicPartition

from desk_contracts.envelope import Envelope
from desk_contracts.testclocks import TestClockChanged
from desk_contracts.topics import TEST_CLOCKS
from desk_platform.feed import TopicFeed
from desk_platform.runtime import ServiceRuntime

log = structlog.get_logger(__name__)

WAIT_FOR_NEW_CLOCK_SECONDS = 5.0  # how long a clock just created may take to reach a process


@dataclass
class TestClocks:
    """The latest state of each test clock this process has read, by clock id."""

    __test__ = False  # not a test class, for pytest

    clocks: dict[str, TestClockChanged] = field(default_factory=dict)
    _reached: dict[str, datetime] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, change: TestClockChanged) -> None:
        """Keep `change` as its clock's state (a clock's records come in its order)."""
        self.clocks[change.clock_id] = change
        self._changed.set()
        self._changed = asyncio.Event()

    def reached(self, clock_id: str, instant: datetime) -> None:
        """The clock is known to have reached `instant` (e.g. a timer fired at it)."""
        if clock_id not in self._reached or instant > self._reached[clock_id]:
            self._reached[clock_id] = instant

    def now(self, clock_id: str) -> datetime | None:
        """The clock's instant (None: a clock this process does not know)."""
        known = self.clocks.get(clock_id)
        reached = self._reached.get(clock_id)
        if known is None:
            return reached
        return max(known.now, reached) if reached is not None else known.now

    def of_desk(self, desk: str) -> TestClockChanged | None:
        """The clock attached to the whole desk, if one is."""
        for clock in self.clocks.values():
            if clock.desk == desk and clock.attached_to == "desk":
                return clock
        return None

    async def wait_for(self, clock_id: str, seconds: float = WAIT_FOR_NEW_CLOCK_SECONDS) -> bool:
        """Until the clock is known, at most `seconds` (it was just created: its record may be
        on its way); whether it is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while clock_id not in self.clocks:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return False
        return True


class NotAClock(ValueError):
    """A new request asked for a test clock it cannot live on (the reason says why)."""


async def clock_for_new_request(
    clocks: TestClocks | None, desk: str, asked: str | None
) -> tuple[str, datetime] | None:
    """The clock a new request of `desk` lives on, and its instant: the one it asked for (it
    must be this desk's), else the one attached to the whole desk; None: the real time.
    NotAClock when it asked for one that cannot be (test clocks disabled, unknown, another
    desk's)."""
    if clocks is None:
        if asked is not None:
            raise NotAClock("test clocks are not enabled here")
        return None
    if asked is None:
        attached = clocks.of_desk(desk)
        if attached is None:
            return None
        asked = attached.clock_id
    elif not await clocks.wait_for(asked):
        raise NotAClock(f"no test clock {asked!r}")
    clock = clocks.clocks[asked]
    if clock.desk != desk:
        raise NotAClock(f"the test clock {asked!r} is the desk {clock.desk!r}'s")
    instant = clocks.now(asked)
    assert instant is not None  # known
    return asked, instant


def clock_change_of(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> TestClockChanged:
    """The clock change a record of the topic carries; ValueError saying why it is none."""
    envelope = Envelope.from_kafka(key, value, headers)
    if envelope.type != TestClockChanged.event_type:
        raise ValueError(f"{envelope.type!r} is not a test clock's change")
    if envelope.schema_version != TestClockChanged.schema_version:
        raise ValueError(
            f"TestClockChanged version {envelope.schema_version} (this reader knows version "
            f"{TestClockChanged.schema_version})"
        )
    return TestClockChanged.model_validate(dict(envelope.data))


class TestClockFeed(TopicFeed):
    """The `test-clocks` topic read whole into `clocks` (module)."""

    __test__ = False  # not a test class, for pytest

    skipped_event = "test_clock_record_skipped"

    def __init__(self, bootstrap_servers: str, topic: str, client_id: str) -> None:
        super().__init__(bootstrap_servers, topic, client_id)
        self.clocks = TestClocks()

    def fold(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Keep each record's clock state; one that cannot be read is logged and skipped."""
        self.apply_each(
            batch, lambda r: self.clocks.apply(clock_change_of(r.key, r.value, r.headers))
        )

    def summary(self) -> str:
        """How many clocks the view holds."""
        return f"{len(self.clocks.clocks)} test clocks ({self.skipped} records skipped)"


@dataclass(frozen=True)
class RequestTime:
    """ "Now" for a request: its test clock's instant when it lives on one, else `real()`."""

    real: Callable[[], datetime]
    clocks: TestClocks | None = None  # None: test clocks are not enabled here

    def now(self, test_clock: str | None) -> datetime:
        """The instant it is for a request on `test_clock` (None: not on a test clock)."""
        if test_clock is None or self.clocks is None:
            return self.real()
        instant = self.clocks.now(test_clock)
        if instant is None:  # its record is late: the request's events keep their own times
            log.warning("test_clock_unknown", test_clock=test_clock)
            return self.real()
        return instant


def follow_test_clocks(runtime: ServiceRuntime) -> TestClocks | None:
    """Where test clocks are enabled, a feed of them as one of `runtime`'s background loops and
    its `test-clocks` readiness check, its consumers started once it has caught up; None
    elsewhere."""
    settings = runtime.settings
    if not settings.test_clocks:
        return None
    feed = TestClockFeed(
        settings.kafka_bootstrap_servers,
        settings.topic(TEST_CLOCKS),
        client_id=f"{runtime.name}-test-clocks",
    )

    async def test_clock_feed(stop: asyncio.Event) -> None:
        await feed.run(stop)

    runtime.every(test_clock_feed)
    runtime.readiness.add("test-clocks", feed.probe)
    runtime.consume_after.append(feed.wait_caught_up)  # no command before its clock is known
    return feed.clocks
