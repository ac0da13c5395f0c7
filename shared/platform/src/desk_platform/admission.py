"""Admission at the doors: past capacity, new work is refused for a moment instead of queued.

A system that queues everything it is offered gets slower, not just full: answers wait behind
work that cannot be done in time, and what was accepted loses its latency bound. So a process
admits new work (a submission over HTTP, a mail over SMTP) while

- the outbox backlog, the events its store holds after the relay's checkpoint (appended, not yet
  on Kafka), is at most `max_backlog`, and
- fewer than `max_in_flight` pieces of new work are being handled by this process, and
- the work it has queued for its store (`desk_eventstore.group_commit`) has waited at most
  `max_wait_seconds`, and
- the pipeline downstream, the slowest watched consumer group, is at most `max_lag_seconds`
  behind (records waiting for it / the rate it takes them: `desk_platform.pipeline_lag`), so
  that accepted work keeps its latency bound when the consumers, not the outbox, are the queue.

Past either, HTTP answers 503 with `Retry-After` and a sentence saying why (`Shedding`, a pure
ASGI middleware), SMTP 451 (temporary: the sending MTA retries). Capacity is measured, not a
configured rate: when the pipeline drains faster, more is admitted. Only writes are refused:
reads (`GET`, `HEAD`, `OPTIONS`) add nothing to the backlog, and `/health`, `/ready`,
`/metrics` always answer.

The backlog and the lag are read by `watch` every `refresh_seconds` (the backlog: the store's
last position less the relay's checkpoint, two index lookups, however long it is; the lag: one
request to the broker per group, and one for the end offsets), never per request; a failed read
keeps the last value and is logged once until a read succeeds again.
`shedding_started` is logged at the first refusal, `shedding_stopped` once nothing was refused
for `QUIET_SECONDS` and the process is under every limit again (with how many were refused),
never a line per request; refusals count in `desk_shed_total{door}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import asyncpg
import structlog
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from desk_platform.metrics import Metrics
from desk_platform.readiness import OPERATIONS
from desk_platform.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

QUIET_SECONDS = 1.0  # no refusal for this long (and under every limit): shedding has stopped
READS = frozenset({"GET", "HEAD", "OPTIONS"})  # never refused: they add no work to the pipeline

_BACKLOG = """
    SELECT coalesce((SELECT max(global_position) FROM events), 0)
           - coalesce((SELECT position FROM relay_checkpoints WHERE relay = $1), 0)"""


@dataclass(frozen=True)
class AdmissionLimits:
    """When a process refuses new work (ADMISSION_MAX_BACKLOG, ADMISSION_MAX_IN_FLIGHT), the
    `Retry-After` it answers with, how often the backlog is read."""

    max_backlog: int = 2000
    max_in_flight: int = 96  # more let a queue of seconds form before the store (bench/load.py)
    max_lag_seconds: float = 2.0  # 0: the lag is not watched
    max_wait_seconds: float = 0.5  # 0: the store's queue is not watched
    retry_after_seconds: int = 1
    refresh_seconds: float = 0.2

    @classmethod
    def of(cls, settings: Settings) -> AdmissionLimits:
        return cls(
            max_backlog=settings.admission_max_backlog,
            max_in_flight=settings.admission_max_in_flight,
            max_lag_seconds=settings.admission_max_lag_seconds,
            max_wait_seconds=settings.admission_max_wait_seconds,
            retry_after_seconds=settings.admission_retry_after_seconds,
            refresh_seconds=settings.admission_refresh_seconds,
        )


BacklogReader = Callable[[], Awaitable[int]]


class LagReader(Protocol):
    """Reads how far behind the pipeline is, in seconds (`desk_platform.pipeline_lag`)."""

    async def read(self) -> float: ...

    async def close(self) -> None: ...


def outbox_backlog(pool: asyncpg.Pool, relay: str) -> BacklogReader:
    """Reads the events of `pool`'s store after the checkpoint of the relay named `relay` (all
    of them while that relay has never run)."""

    async def read() -> int:
        async with pool.acquire() as conn:
            return max(int(await conn.fetchval(_BACKLOG, relay)), 0)

    return read


class Admission:
    """One process's admission (see the module): the doors ask `refusal` before taking new work
    and hold `handling()` while they do it; `watch` keeps the backlog fresh."""

    def __init__(
        self,
        read_backlog: BacklogReader,
        limits: AdmissionLimits,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        lag: LagReader | None = None,
        waited: Callable[[], float] | None = None,
    ) -> None:
        self.read_backlog = read_backlog
        self.lag_reader = lag
        self.waited = waited  # how long the oldest queued work has waited (group commit)
        self.limits = limits
        self.metrics = metrics if metrics is not None else Metrics()
        self.clock = clock
        self.backlog = 0  # as last read
        self.lag = 0.0  # seconds, as last read
        self.in_flight = 0
        self.shedding = False
        self.refused = 0  # in the current (or last) shedding episode
        self._since = 0.0  # when the episode began
        self._last_refused = 0.0
        self._unread: set[str] = set()  # what the last reads failed to read

    def over(self) -> str | None:
        """Why this process is past capacity now, in a few words (None: it is not)."""
        limits = self.limits
        if self.backlog > limits.max_backlog:
            return f"{self.backlog} events wait to be published, more than {limits.max_backlog}"
        if self.in_flight >= limits.max_in_flight:
            return f"{self.in_flight} being handled at once, at most {limits.max_in_flight}"
        waited = self.waited() if self.waited is not None else 0.0
        if limits.max_wait_seconds and waited > limits.max_wait_seconds:
            return (
                f"work waits {waited:.1f} s for the database here, "
                f"more than {limits.max_wait_seconds:g} s"
            )
        if limits.max_lag_seconds and self.lag > limits.max_lag_seconds:
            return (
                f"the services downstream are {self.lag:.1f} s behind, "
                f"more than {limits.max_lag_seconds:g} s"
            )
        return None

    def refusal(self, door: str) -> str | None:
        """Why new work at `door` (`http`, `smtp`) is refused now, counted and, at the first
        of an episode, logged; None: it is admitted."""
        reason = self.over()
        if reason is None:
            return None
        now = self.clock()
        self.metrics.shed.labels(door).inc()
        self._last_refused = now
        if not self.shedding:
            self.shedding, self.refused, self._since = True, 0, now
            self.metrics.shedding.set(1)
            log.warning(
                "shedding_started",
                door=door,
                reason=reason,
                backlog=self.backlog,
                in_flight=self.in_flight,
                lag_seconds=round(self.lag, 2),
                max_backlog=self.limits.max_backlog,
                max_in_flight=self.limits.max_in_flight,
            )
        self.refused += 1
        return reason

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Counts one piece of admitted work in flight for the block."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def refresh(self) -> None:
        """Read the backlog and the lag once (a failure keeps the last value), then settle the
        episode."""
        self.backlog = await self._read("backlog", self.read_backlog, self.backlog)
        if self.lag_reader is not None and self.limits.max_lag_seconds:
            self.lag = await self._read("lag", self.lag_reader.read, self.lag)
        self.metrics.admission_backlog.set(self.backlog)
        self.metrics.admission_lag.set(self.lag)
        self.metrics.admission_in_flight.set(self.in_flight)
        now = self.clock()
        if self.shedding and now - self._last_refused >= QUIET_SECONDS and self.over() is None:
            self.shedding = False
            self.metrics.shedding.set(0)
            log.info(
                "shedding_stopped",
                refused=self.refused,
                seconds=round(now - self._since, 1),
                backlog=self.backlog,
                lag_seconds=round(self.lag, 2),
                in_flight=self.in_flight,
            )

    async def _read(self, what: str, read: Callable[[], Awaitable[T]], last: T) -> T:
        """`read()`, or `last` when it fails (logged once until a read succeeds again)."""
        try:
            value = await read()
        except Exception as error:  # the server is out of reach: its own answers say so
            if what not in self._unread:
                log.warning(f"admission_{what}_unread", error=f"{type(error).__name__}: {error}")
            self._unread.add(what)
            return last
        self._unread.discard(what)
        return value

    async def watch(self, stop: asyncio.Event) -> None:
        """Refresh every `refresh_seconds` until `stop` (a loop of the service's runtime)."""
        try:
            while not stop.is_set():
                await self.refresh()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.limits.refresh_seconds)
        finally:
            if self.lag_reader is not None:
                with contextlib.suppress(Exception):
                    await self.lag_reader.close()


class Shedding:
    """ASGI middleware: a write past capacity gets 503 with `Retry-After` and `detail` saying
    why, before its body is read; an admitted one counts in flight until answered."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS or scope["path"] in OPERATIONS:
            await self.app(scope, receive, send)
            return
        admission = self.admission
        reason = admission.refusal("http")
        if reason is not None:
            seconds = admission.limits.retry_after_seconds
            answer = JSONResponse(
                {"detail": f"past capacity: {reason}; retry after {seconds} s"},
                status_code=503,
                headers={"Retry-After": str(seconds)},
            )
            await answer(scope, receive, send)
            return
        with admission.handling():
            await self.app(scope, receive, send)
