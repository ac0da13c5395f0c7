"""What every service process does around its own logic: one place, so services stay short.

Start-up: structured logs, the service's PostgreSQL schema migrated (retrying while the server is
unreachable), Kafka awaited (retrying while the broker or a topic is missing), the idempotent
producer, the outbox relay (one active per store; replicas stand by), the consumers, background
loops, and the HTTP API: the service's own, or a small one, with `/health`, `/ready` and
`/metrics` on every process (desk_platform.readiness), traced (desk_platform.tracing).
SIGTERM/SIGINT stop everything in order.
A process runs on uvloop's event loop and parses HTTP with httptools (uvicorn picks it when
installed): both cost less CPU than asyncio's own loop and h11's pure-Python parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
import uvicorn
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber

from desk_contracts.topics import MAIN_TOPICS, TEST_CLOCKS, dead_letter
from desk_eventstore.db import open_store
from desk_eventstore.migrate import Migration
from desk_eventstore.records import RecordedEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_platform.consumer import EventConsumer, Handler, Together
from desk_platform.deadletter import DeadLetters
from desk_platform.http_metrics import HttpMetrics
from desk_platform.kafka_ready import wait_for_kafka
from desk_platform.logging import configure_logging
from desk_platform.readiness import (
    ConsumerProbe,
    Readiness,
    Verdict,
    kafka_probe,
    outbox_probe,
    postgres_probe,
    probe_app,
    readiness_router,
)
from desk_platform.settings import DEV_SURVEY_SECRET, Settings
from desk_platform.tracing import (
    configure_tracing,
    flush_traces,
    instrument_app,
    own_traces,
    quiet,
)

log = structlog.get_logger(__name__)

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Subscription:
    topic: str
    group_id: str
    consumer: str
    handle: Handler
    applied: Callable[[], None] | None = None  # told after a batch applied events
    together: Together | None = None  # the records `handle` can also apply as one set


@dataclass
class ServiceRuntime:
    """A service's process: `name` is also its schema and its CloudEvents source."""

    name: str
    settings: Settings
    migrations: list[Migration] = field(default_factory=list)
    topic_for: Callable[[RecordedEvent], str] | None = None  # None: this service publishes nothing
    pool: asyncpg.Pool | None = None
    producer: AIOKafkaProducer | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    # what the consumers wait for before they start (the notifier: the directory caught up)
    consume_after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    consumers: list[EventConsumer] = field(default_factory=list)
    relay: OutboxRelay | None = None  # once running (leader or not, events set aside)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False
    consuming: bool = False  # the consumers joined their groups (see `_consume`)
    readiness: Readiness = field(init=False)  # a composition root adds its service's checks
    # a door the public reaches (the portal): callers' trace headers are not believed
    public: bool = False
    # the process's name in traces where it is not the service's (the e-mail gateway's)
    process: str | None = None
    traced: bool = False  # tracing installed (desk_platform.tracing), once the store is started

    def __post_init__(self) -> None:
        self.readiness = Readiness(timeout=self.settings.ready_timeout_seconds)

    @property
    def source(self) -> str:
        return f"/desk/{self.name}"

    @property
    def relay_name(self) -> str:
        """The outbox relay's name (its checkpoint's row), the same in every replica."""
        return f"{self.name}-relay"

    def subscribe(
        self,
        topic: str,
        handle: Handler,
        *,
        group_id: str | None = None,
        applied: Callable[[], None] | None = None,
        together: Together | None = None,
    ) -> None:
        """Consume `topic` in the consumer group `<service>.<topic>` (one group per topic, so
        replicas of a service share each topic's partitions); `applied` is called after each
        batch that applied events, once committed (to wake a loop that works on them);
        `together`: the records `handle` can also apply as one set (see the consumer)."""
        topic = self.settings.topic(topic)
        group = group_id or f"{self.name}.{topic}"
        self.subscriptions.append(Subscription(topic, group, group, handle, applied, together))

    def every(self, loop: Loop) -> None:
        self.loops.append(loop)

    def repeat(
        self,
        name: str,
        work: Callable[[], Awaitable[int]],
        seconds: float,
        *,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run `work` every `seconds` until stopped, at once when `wake` is set, and again at
        once while it finds some (it returns how much it did); a failure is logged and tried
        again next time, so a database blip never ends the loop (nor, through `_watch`, the
        process)."""

        async def loop(stop: asyncio.Event) -> None:
            while not stop.is_set():
                if wake is not None:
                    wake.clear()  # set again while the work runs: one more pass
                try:
                    while not stop.is_set() and await work() > 0:
                        pass
                except Exception:
                    log.exception("periodic_work_failed", work=name)
                await _rest(stop, wake, seconds)

        loop.__name__ = name
        self.loops.append(loop)

    async def start_store(self) -> asyncpg.Pool:
        """Logs configured and the service's schema migrated; the composition root's first step."""
        if self.pool is None:
            configure_logging(self.name, self.settings.log_format, self.settings.log_level)
            self.traced = configure_tracing(self.process or self.name, self.settings)
            exporting = self.settings.otel_exporter_otlp_endpoint
            log.info("service_starting", tracing=(exporting or "on") if self.traced else "off")
            if self.settings.survey_secret == DEV_SURVEY_SECRET:
                if self.settings.guarded:
                    log.error(
                        "service_not_started",
                        reason="SURVEY_SECRET is the development default, with which anyone "
                        "can forge survey links: refused with DESK_ENV=production or staging",
                    )
                    raise SystemExit(2)
                log.warning(
                    "survey_secret_is_the_development_default",
                    hint="anyone can forge survey links: set SURVEY_SECRET",
                )
            self.pool = await open_store(self.settings.database_url, self.name, self.migrations)
        return self.pool

    async def start(self) -> None:
        await self.start_store()
        topics = tuple(self.settings.topic(t) for t in MAIN_TOPICS)
        topics += tuple(dead_letter(t) for t in topics)
        if self.settings.test_clocks:  # only where they are enabled (an upgrade needs none)
            topics += (self.settings.topic(TEST_CLOCKS),)
        await wait_for_kafka(self.settings.kafka_bootstrap_servers, topics)
        self.producer = idempotent_producer(self.settings.kafka_bootstrap_servers, self.name)
        await self.producer.start()

    async def _relay_producer(self) -> AIOKafkaProducer:
        """A started idempotent producer of the relay's own (renewed when it becomes unusable,
        without touching the one the dead-letter path shares)."""
        producer = idempotent_producer(self.settings.kafka_bootstrap_servers, f"{self.name}-relay")
        await producer.start()
        return producer

    async def run(self, app: Any | None = None) -> None:
        """Run until SIGTERM/SIGINT (or `stop` is set); `app` is the service's FastAPI app
        (None: the process serves only `/health`, `/ready` and `/metrics`)."""
        await self.start()
        assert self.pool is not None and self.producer is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)

        broker = KafkaBroker(self.settings.kafka_bootstrap_servers, logger=None)
        dead_letters = DeadLetters(self.producer)
        groups: list[tuple[str, EventConsumer]] = []
        for sub in self.subscriptions:
            consumer = EventConsumer(
                self.pool,
                dead_letters,
                sub.consumer,
                sub.handle,
                applied=sub.applied,
                together=sub.together,
            )
            consumer.subscribe(broker, sub.topic, sub.group_id)
            self.consumers.append(consumer)
            groups.append((sub.group_id, consumer))
        self.readiness.metrics.count_consumers(lambda: groups)
        self.readiness.add("postgres", postgres_probe(self.pool))
        self.readiness.add("kafka", kafka_probe(self.producer))
        if broker.subscribers:
            self.readiness.add("consumers", self._joined_probe)

        with quiet():  # background work: spans only in the traces of what it handles
            tasks: list[asyncio.Task[Any]] = [
                asyncio.create_task(fn(self.stop), name=fn.__name__) for fn in self.loops
            ]
        if self.topic_for is not None:
            topic_for = self.topic_for
            relay = OutboxRelay(
                self.settings.database_url,
                self.name,
                await self._relay_producer(),
                lambda event: self.settings.topic(topic_for(event)),
                source=self.source,
                name=self.relay_name,
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                renew_producer=self._relay_producer,
            )
            self.relay = relay
            with quiet():
                tasks.append(asyncio.create_task(relay.run(self.stop), name="outbox-relay"))
            self.readiness.add(
                "relay",
                outbox_probe(
                    self.pool, relay, self.settings.ready_relay_seconds, self.readiness.metrics
                ),
            )
        app = app if app is not None else probe_app(self.name)
        app.include_router(readiness_router(self.readiness))
        if self.traced:
            instrument_app(app)
        app.add_middleware(HttpMetrics, metrics=self.readiness.metrics)  # every answer counted
        config = uvicorn.Config(
            own_traces(app) if self.public and self.traced else app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        tasks.append(asyncio.create_task(_serve(server), name="http-server"))
        for task in tasks:
            task.add_done_callback(self._watch)
        # Joining the consumer groups waits for the group's assignment, which after a replica was
        # killed takes up to the session timeout: the loops (the notifier's sender), the relay
        # and the HTTP API already run meanwhile, and /ready says "joining" until it is done.
        with quiet():
            joining = asyncio.create_task(self._consume(broker), name="kafka-consumers")
        joining.add_done_callback(self._watch_joining)
        log.info(
            "service_started",
            http_port=self.settings.http_port,
            consumes=[s.topic for s in self.subscriptions],
        )
        await self.stop.wait()
        log.info("service_stopping")
        server.should_exit = True
        if not joining.done():
            joining.cancel()
        await broker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        await self.producer.stop()
        if self.relay is not None:
            await self.relay.producer.stop()
        await self.pool.close()
        flush_traces()
        log.info("service_stopped", failed=self.failed)
        if self.failed:  # let the supervisor (systemd, Kubernetes, the launcher) restart us
            raise SystemExit(1)

    async def _consume(self, broker: KafkaBroker) -> None:
        """Start the consumers (after what `consume_after` waits for; their groups'
        assignment awaited), then check each group. A broker that cannot be reached yet
        (restarting, overloaded) is tried again each second: /ready says "joining" meanwhile,
        and the rest of the process keeps running."""
        for awaited in self.consume_after:
            await awaited()
        while True:
            try:
                await broker.start()
                break
            except KafkaConnectionError as error:
                log.warning("consumers_not_started", error=str(error), retry_in_s=1.0)
                with contextlib.suppress(Exception):
                    await broker.stop()
                await asyncio.sleep(1.0)
        members = [s for s in broker.subscribers if isinstance(s, LogicSubscriber)]
        for subscriber in sorted(members, key=lambda s: str(s.group_id)):
            group = str(subscriber.group_id)
            self.readiness.add(
                f"consumer:{group}",
                ConsumerProbe(
                    subscriber, group, self.settings.ready_consumer_seconds, self.readiness.metrics
                ),
            )
        self.consuming = True
        log.info("consumers_started", groups=[str(s.group_id) for s in members])

    async def _joined_probe(self) -> Verdict:
        if self.consuming:
            return Verdict(True, "every consumer group joined")
        return Verdict(False, "joining the consumer groups (waiting for their assignment)")

    def _watch_joining(self, task: asyncio.Task[Any]) -> None:
        """Consumers that could not start stop the process, like any other part; having
        started is what this task is for."""
        if task.cancelled() or task.exception() is None:
            return
        self._watch(task)

    def _watch(self, task: asyncio.Task[Any]) -> None:
        """A relay, loop or HTTP server that ends before `stop` stops the whole process, loudly,
        rather than leaving a replica that accepts writes it will never publish."""
        if self.stop.is_set():
            return
        error = None if task.cancelled() else task.exception()
        log.error(
            "service_part_died",
            task=task.get_name(),
            error=f"{type(error).__name__}: {error}" if error else "returned",
        )
        self.failed = True
        self.stop.set()


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as error:  # uvicorn exits the process when it cannot bind: stop cleanly
        raise RuntimeError(f"HTTP server could not start (exit {error.code})") from None


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the runtime owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_service(build: Callable[[Settings], Awaitable[tuple[ServiceRuntime, Any | None]]]) -> None:
    """Entry point helper: settings from the environment, then run the service until stopped."""

    async def main() -> None:
        settings = Settings()
        runtime, app = await build(settings)
        await runtime.run(app)

    run_loop(main())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to its end on the event loop every process uses (uvloop's)."""
    uvloop.run(main)


async def _rest(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Until `stop` or `wake` is set, or `seconds` have passed."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
