"""Keep what workflow publishes of each request, arm its timers from it (the pure calculator
decides), and fire due ones.

Per request sla keeps its timeline (status and priority after each version) and its latest
published state; it folds no ticket event itself.

Arming replaces the ticket's pending timers after every event. Firing takes due timers with
`FOR UPDATE SKIP LOCKED`, so any number of replicas share the work, and appends what each
timer means to the sla store (the outbox): SLA warnings and breaches for `sla-events`,
reminder and auto-close commands for `ticket-commands`. The event id is the timer's
deterministic command id, so a timer fired twice appends once.

Timers are fired by batches, a batch a transaction, so that a thousand due a second cost a
few statements each batch rather than ten each timer: the requests of the batch's SLA timers
read at once, what each timer means decided in memory, then the occurrences recorded, the
timers marked and the events appended (every stream of the batch at once) together. Timers
rarely fail: when a batch written together does, it is rolled back to its savepoint and written
again one timer at a time, each behind its own savepoint, so one failing timer does not undo or
stall the others; it is put back for later (`RETRY_FAILED_TIMER`), as is one whose meaning
cannot be read.

What is armed and fired is told to a `TimerMeter` (the composition root's is Prometheus's,
`sla.adapters.metrics`): each timer armed, each fired (once its batch is committed) with how
late it fired, and at each pass of the loop the timers due and not fired yet (`due_timers`).
Arming is counted in the consumer's transaction: a set of events rolled back and applied again
one by one (rare) counts its timers again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.sla import AutoCloseDue, ReminderDue, SlaBreached, SlaWarningReached
from desk_contracts.state import RequestState
from desk_eventstore.records import NewEvent
from desk_eventstore.store import DuplicateEvent, append, append_to_streams
from desk_policies.calendars import BusinessCalendar
from desk_policies.model import DeskPolicy
from sla.domain.business_time import BusinessTime
from sla.domain.clocks import ClockKind, ClockState, TicketClocks, read_clocks
from sla.domain.timeline import Step, Timeline
from sla.domain.timers import Timer, TimerKind, plan_timers

log = structlog.get_logger(__name__)
RETRY_FAILED_TIMER = timedelta(minutes=1)
FIRE_BATCH = 100  # timers taken by one transaction
SLA_KINDS = (TimerKind.SLA_WARNING, TimerKind.SLA_BREACH)


class TimerMeter(Protocol):
    """What is told of the timers as they are armed and fired."""

    def armed(self, kind: TimerKind) -> None:
        """A timer of `kind` was armed."""

    def fired(self, kind: TimerKind, late: float) -> None:
        """A timer of `kind` fired, `late` seconds after it fell due."""

    def due(self, waiting: Mapping[TimerKind, int]) -> None:
        """The timers due and not fired yet, by kind (kinds without any left out)."""


class Unmetered:
    """A `TimerMeter` that keeps nothing (tests, tools)."""

    def armed(self, kind: TimerKind) -> None:
        """Nothing kept."""

    def fired(self, kind: TimerKind, late: float) -> None:
        """Nothing kept."""

    def due(self, waiting: Mapping[TimerKind, int]) -> None:
        """Nothing kept."""


UNMETERED = Unmetered()


@dataclass
class Desks:
    """Policies and their calendars' arithmetic, loaded once at start."""

    policies: dict[str, DeskPolicy]
    calendars: dict[str, BusinessCalendar]

    def __post_init__(self) -> None:
        self.business_time = {cid: BusinessTime(cal) for cid, cal in self.calendars.items()}

    def of(self, policy_id: str) -> tuple[DeskPolicy, BusinessTime]:
        policy = self.policies[policy_id]
        return policy, self.business_time[policy.sla.calendar]


async def record(conn: asyncpg.Connection, state: RequestState) -> None:
    """Keep the request's step at the state's version, and the state if it is the latest."""
    await record_all(conn, [state])


async def record_all(conn: asyncpg.Connection, states: Sequence[RequestState]) -> None:
    """`record` for each of `states`, in their order, with two pipelined statements."""
    steps = [(state, Step.of(state)) for state in states]
    await conn.executemany(
        """INSERT INTO request_steps (ticket_id, version, at, status, priority)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        [(s.ticket_id, step.version, step.at, step.status, step.priority) for s, step in steps],
    )
    await conn.executemany(
        """INSERT INTO request_states (ticket_id, version, state) VALUES ($1, $2, $3)
           ON CONFLICT (ticket_id) DO UPDATE SET version = EXCLUDED.version,
               state = EXCLUDED.state
           WHERE request_states.version < EXCLUDED.version""",
        [(state.ticket_id, state.version, state.model_dump_json()) for state in states],
    )


async def request_of(
    conn: asyncpg.Connection, ticket_id: str
) -> tuple[Timeline, RequestState] | None:
    """The request's timeline and latest state; None when unknown, or while a version is
    missing (its event has not arrived yet: nothing is computed before it does)."""
    return _request((await _requests_kept(conn, [ticket_id])).get(ticket_id), ticket_id)


Kept = tuple[str, list[Step]]  # a request's latest state as JSON, and its steps in order


async def _requests_kept(conn: asyncpg.Connection, ticket_ids: list[str]) -> dict[str, Kept]:
    """What sla keeps of each of these requests (one query however many), undecoded: those it
    does not know are absent."""
    rows = await conn.fetch(
        """SELECT s.ticket_id, s.state,
                  (SELECT array_agg(ROW(p.version, p.at, p.status, p.priority) ORDER BY p.version)
                   FROM request_steps AS p WHERE p.ticket_id = s.ticket_id) AS steps
           FROM request_states AS s WHERE s.ticket_id = ANY($1::text[])""",
        ticket_ids,
    )
    return {
        row["ticket_id"]: (row["state"], [Step(*step) for step in row["steps"] or ()])
        for row in rows
    }


def _request(kept: Kept | None, ticket_id: str) -> tuple[Timeline, RequestState] | None:
    """The timeline and latest state of what is kept of a request (see `request_of`)."""
    if kept is None:
        return None
    state, steps = kept
    timeline = Timeline(tuple(steps))
    if timeline.missing is not None:
        log.warning("history_gap", ticket_id=ticket_id, missing=timeline.missing)
        return None
    return timeline, RequestState.model_validate_json(state)


async def requests_of(
    conn: asyncpg.Connection, ticket_ids: Sequence[str]
) -> dict[str, tuple[Timeline, RequestState]]:
    """`request_of` for each of `ticket_ids` with one statement: those known whole, by id."""
    known = {}
    for ticket_id, kept in (await _requests_kept(conn, list(ticket_ids))).items():
        request = _request(kept, ticket_id)
        if request is not None:
            known[ticket_id] = request
    return known


async def arm(
    conn: asyncpg.Connection,
    desks: Desks,
    ticket_id: str,
    now: datetime,
    meter: TimerMeter = UNMETERED,
) -> Sequence[Timer]:
    """Replace the request's pending timers by those its latest state calls for at `now`."""
    return (await arm_all(conn, desks, [ticket_id], now, meter)).get(ticket_id, ())


async def arm_all(
    conn: asyncpg.Connection,
    desks: Desks,
    ticket_ids: Sequence[str],
    now: datetime,
    meter: TimerMeter = UNMETERED,
) -> dict[str, Sequence[Timer]]:
    """`arm` for each of `ticket_ids` (those sla knows whole), with six statements for all;
    the timers armed, by ticket id (each told to `meter`)."""
    known = await requests_of(conn, ticket_ids)
    if not known:
        return {}
    fired: dict[str, set[str]] = {ticket_id: set() for ticket_id in known}
    for row in await conn.fetch(
        "SELECT ticket_id, occurrence FROM fired_occurrences WHERE ticket_id = ANY($1::text[])",
        list(known),
    ):
        fired[row["ticket_id"]].add(row["occurrence"])
    on_clocks = {state.test_clock for _, state in known.values() if state.test_clock}
    instants = await _clock_instants(conn, on_clocks) if on_clocks else {}
    # a request on a clock sla does not know (not enabled here) lives on the real time
    on_clock = {
        i: s.test_clock
        for i, (_, s) in known.items()
        if s.test_clock is not None and s.test_clock in instants
    }
    armed: dict[str, Sequence[Timer]] = {}
    boards = []
    for ticket_id, (timeline, state) in known.items():
        policy, calendar = desks.of(state.policy_id)
        at = instants[on_clock[ticket_id]] if ticket_id in on_clock else now
        clocks = read_clocks(timeline, state, policy, calendar, at)
        armed[ticket_id] = plan_timers(
            timeline, state, policy, calendar, at, fired=fired[ticket_id], clocks=clocks
        )
        boards.append(_board_row(state, clocks))
    await conn.executemany(_BOARD, boards)
    await conn.execute(
        "DELETE FROM timers WHERE ticket_id = ANY($1::text[]) AND fired_at IS NULL", list(known)
    )
    await conn.executemany(
        """INSERT INTO timers (timer_id, ticket_id, kind, occurrence, fire_at, armed_version,
                               clock, days_waiting, test_clock)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (timer_id) DO NOTHING""",
        [
            (
                t.command_id,
                t.ticket_id,
                t.kind.value,
                t.occurrence,
                t.fire_at,
                t.armed_version,
                t.clock,
                t.days_waiting,
                on_clock.get(t.ticket_id),
            )
            for timers in armed.values()
            for t in timers
        ],
    )
    if on_clock:  # what an advancing clock waits for (sla.application.testclocks)
        reached = {i: known[i][1].version for i in on_clock}
        await conn.execute(
            """DELETE FROM test_clock_waits AS w USING unnest($1::text[], $2::int[]) AS s(t, v)
               WHERE w.ticket_id = s.t AND w.armed_version < s.v""",
            list(reached),
            list(reached.values()),
        )
    for ticket_id, timers in armed.items():
        log.info(
            "timers_armed",
            ticket_id=ticket_id,
            version=known[ticket_id][1].version,
            timers=[f"{t.kind.value}@{t.fire_at.isoformat()}" for t in timers],
        )
        for timer in timers:
            meter.armed(timer.kind)
    return armed


async def _clock_instants(
    conn: asyncpg.Connection, clock_ids: Collection[str]
) -> dict[str, datetime]:
    """The instants of these test clocks (those that exist), by id."""
    rows = await conn.fetch(
        "SELECT clock_id, now FROM test_clocks WHERE clock_id = ANY($1::text[])", list(clock_ids)
    )
    return {row["clock_id"]: row["now"] for row in rows}


def _urgent(clocks: TicketClocks) -> tuple[datetime | None, datetime | None, int | None]:
    """The earliest due and warning instants of a running clock, and the business seconds left
    on the most urgent clock that counts (running or paused), as the board keeps them."""
    running = [c for c in clocks.clocks if c.state is ClockState.RUNNING]
    dues = [c.due_at for c in running if c.due_at is not None]
    warnings = [c.warning_at for c in running if c.warning_at is not None]
    left = [
        int(c.remaining.total_seconds())
        for c in clocks.clocks
        if c.state in (ClockState.RUNNING, ClockState.PAUSED) and c.remaining is not None
    ]
    return min(dues, default=None), min(warnings, default=None), min(left, default=None)


# the board row of a ticket (`_board_row`), inserted or brought up to date
_BOARD = """INSERT INTO clock_board (ticket_id, key, policy_id, priority, status, response_state,
       response_due, response_reason, resolution_state, resolution_due,
       resolution_reason, next_due, version, organisation_id, subject, category,
       expected_actor, assignee_id, group_id, requester_id, created_at, updated_at,
       response_warning, resolution_warning, next_warning, remaining_s)
   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
           $18, $19, $20, $21, $22, $23, $24, $25, $26)
   ON CONFLICT (ticket_id) DO UPDATE SET priority = $4, status = $5,
       response_state = $6, response_due = $7, response_reason = $8,
       resolution_state = $9, resolution_due = $10, resolution_reason = $11,
       next_due = $12, version = $13, organisation_id = $14, subject = $15,
       category = $16, expected_actor = $17, assignee_id = $18, group_id = $19,
       requester_id = $20, created_at = $21, updated_at = $22,
       response_warning = $23, resolution_warning = $24, next_warning = $25,
       remaining_s = $26"""


def _board_row(state: RequestState, clocks: TicketClocks) -> tuple[object, ...]:
    """The board row of the ticket (`_BOARD`): whose request it is and what a queue shows of
    it (subject, category, who acts, assignee...), its clocks with their due and warning
    instants, and the time left on the most urgent one."""
    response, resolution = clocks.response, clocks.resolution
    next_due, next_warning, remaining = _urgent(clocks)
    return (
        state.ticket_id,
        state.key,
        state.policy_id,
        clocks.priority,
        clocks.status,
        response.state.value if response else None,
        response.due_at if response else None,
        response.reason if response else None,
        resolution.state.value if resolution else None,
        resolution.due_at if resolution else None,
        resolution.reason if resolution else None,
        next_due,
        clocks.version,
        state.organisation_id,
        state.subject,
        state.category,
        state.expected_actor,
        state.assignee_id,
        state.group_id,
        state.requester_id,
        state.created_at,
        state.updated_at,
        response.warning_at if response else None,
        resolution.warning_at if resolution else None,
        next_warning,
        remaining,
    )


async def complete_board(pool: asyncpg.Pool, desks: Desks, now: datetime, batch: int = 200) -> int:
    """Write again the board rows that lack what migration 0005 could not compute (warnings,
    time left: SQL has no business calendar): rows not closed with no time left yet. Run at
    start; returns how many rows were written. A row whose request has no target keeps none
    and is read again at the next start (harmless: one pass over such rows, by id)."""
    done, after = 0, ""
    while True:
        async with pool.acquire() as conn:
            ids = [
                r["ticket_id"]
                for r in await conn.fetch(
                    """SELECT ticket_id FROM clock_board
                       WHERE category <> 'closed' AND remaining_s IS NULL AND ticket_id > $1
                       ORDER BY ticket_id LIMIT $2""",
                    after,
                    batch,
                )
            ]
            for ticket_id in ids:
                known = await request_of(conn, ticket_id)
                if known is None or known[1].policy_id not in desks.policies:
                    continue
                timeline, state = known
                policy, calendar = desks.of(state.policy_id)
                try:
                    clocks = read_clocks(timeline, state, policy, calendar, now)
                except ValueError:  # a status its desk lacks: left as it is
                    log.warning("board_row_unreadable", ticket_id=ticket_id)
                    continue
                await conn.execute(_BOARD, *_board_row(state, clocks))
                done += 1
        if len(ids) < batch:
            return done
        after = ids[-1]


async def clocks_of(
    conn: asyncpg.Connection, desks: Desks, ticket_id: str, now: datetime
) -> TicketClocks | None:
    """The request's clocks at `now` (at its test clock's instant when it lives on one); None
    when sla does not know it (or not all of it yet)."""
    known = await request_of(conn, ticket_id)
    if known is not None:
        now = await now_for(conn, known[1], now)
    return _clocks(desks, known, now)


async def now_for(conn: asyncpg.Connection, state: RequestState, now: datetime) -> datetime:
    """What time it is for the request: `now`, or its test clock's instant if it lives on one."""
    if state.test_clock is None:
        return now
    return (await _clock_instants(conn, [state.test_clock])).get(state.test_clock, now)


def _clocks(
    desks: Desks, known: tuple[Timeline, RequestState] | None, now: datetime
) -> TicketClocks | None:
    if known is None:
        return None
    timeline, state = known
    policy, calendar = desks.of(state.policy_id)
    return read_clocks(timeline, state, policy, calendar, now)


async def fire_due(
    pool: asyncpg.Pool,
    desks: Desks,
    now: datetime,
    limit: int = FIRE_BATCH,
    meter: TimerMeter = UNMETERED,
    clock: Callable[[], datetime] | None = None,
) -> int:
    """Handle the timers due at `now`, `limit` at a time until a batch comes back short; returns
    how many were handled (fired, found stale, or put back for later), so a caller looping
    until 0 always ends. Each timer fired is told to `meter`, with how late it fired: at
    `clock()` once its batch is committed (a backlog's later batches fire later), at `now`
    without a clock."""
    handled = 0
    while True:
        taken = await _fire_batch(pool, desks, now, limit, meter, clock or (lambda: now))
        handled += taken
        if taken < limit:
            return handled


async def next_due(pool: asyncpg.Pool, now: datetime) -> datetime | None:
    """When the next pending timer falls due after `now` (None: none is armed), so that the
    loop can rest until then (those of test clocks fire when their clock moves)."""
    async with pool.acquire() as conn:
        due: datetime | None = await conn.fetchval(
            """SELECT min(fire_at) FROM timers
               WHERE fired_at IS NULL AND fire_at > $1 AND test_clock IS NULL""",
            now,
        )
    return due


async def due_timers(pool: asyncpg.Pool, now: datetime) -> dict[TimerKind, int]:
    """The timers due at `now` and not fired yet, by kind (kinds without any left out)."""
    rows = await pool.fetch(
        """SELECT kind, count(*) AS due FROM timers
           WHERE fired_at IS NULL AND fire_at <= $1 AND test_clock IS NULL GROUP BY kind""",
        now,
    )
    return {TimerKind(row["kind"]): row["due"] for row in rows}


@dataclass(frozen=True)
class Firing:
    """A taken timer and what it means now (None: stale)."""

    row: asyncpg.Record
    event: Event | None

    @property
    def occurrence(self) -> tuple[str, str]:
        """The ticket and the happening this timer is an occurrence of."""
        return self.row["ticket_id"], self.row["occurrence"]


async def _fire_batch(
    pool: asyncpg.Pool,
    desks: Desks,
    now: datetime,
    limit: int,
    meter: TimerMeter,
    clock: Callable[[], datetime],
) -> int:
    """Take up to `limit` due timers (of no test clock) and handle them in one transaction
    (`fire_taken`). Those fired are told to `meter` once the transaction is committed."""
    async with pool.acquire() as conn, conn.transaction():
        taken, fired = await fire_taken(conn, desks, now, limit)
    committed = clock()
    for firing in fired:
        meter.fired(TimerKind(firing.row["kind"]), lateness(firing.row["fire_at"], committed))
    return taken


_DUE = """SELECT * FROM timers WHERE fired_at IS NULL AND fire_at <= $1 AND test_clock IS NULL
          ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED"""
_DUE_ON_CLOCK = """SELECT * FROM timers WHERE fired_at IS NULL AND fire_at <= $1
                     AND test_clock = $3
                   ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED"""


async def fire_taken(
    conn: asyncpg.Connection,
    desks: Desks,
    now: datetime,
    limit: int,
    test_clock: str | None = None,
) -> tuple[int, list[Firing]]:
    """Take up to `limit` timers due at `now` (those of `test_clock`, else those of no test
    clock) and handle them in the caller's transaction: together, in a few statements, or, when
    that fails, one at a time, each behind its own savepoint, so that a failing timer does not
    undo the others (it is put back for later; on a test clock, set aside with an error, so
    the clock moves on). How many were taken, and those fired."""
    fired: list[Firing] = []
    if test_clock is None:
        rows = await conn.fetch(_DUE, now, limit)
    else:
        rows = await conn.fetch(_DUE_ON_CLOCK, now, limit, test_clock)
    if not rows:
        return 0, []
    sla = [row["ticket_id"] for row in rows if TimerKind(row["kind"]) in SLA_KINDS]
    kept = await _requests_kept(conn, sla) if sla else {}
    firings: list[Firing] = []
    failed: list[asyncpg.Record] = []
    for row in rows:
        try:
            firings.append(Firing(row, _event_for(desks, row, kept, now)))
        except Exception:
            log.exception("timer_failed", ticket_id=row["ticket_id"], kind=row["kind"])
            failed.append(row)
    try:
        async with conn.transaction():  # savepoint: a failure falls back to one at a time
            fired = await _fire_together(conn, firings, now)
    except Exception:
        log.warning("timer_batch_failed", timers=len(firings), exc_info=True)
        for firing in firings:
            try:
                async with conn.transaction():  # one timer's failure does not undo the others
                    if await _fire(conn, firing, now):
                        fired.append(firing)
            except Exception:
                log.exception(
                    "timer_failed", ticket_id=firing.row["ticket_id"], kind=firing.row["kind"]
                )
                failed.append(firing.row)
    if failed and test_clock is not None:  # tried again a minute later, a clock would crawl
        await conn.execute(
            "UPDATE timers SET fired_at = $2 WHERE timer_id = ANY($1::uuid[])",
            [row["timer_id"] for row in failed],
            now,
        )
        log.error("timers_failed_on_test_clock", test_clock=test_clock, timers=len(failed))
    elif failed:
        await conn.execute(
            "UPDATE timers SET fire_at = $2 WHERE timer_id = ANY($1::uuid[])",
            [row["timer_id"] for row in failed],
            now + RETRY_FAILED_TIMER,
        )
    return len(rows), fired


def lateness(due_at: datetime, fired_at: datetime) -> float:
    """How many seconds after it fell due a timer fired (0 when on time or early)."""
    return max((fired_at - due_at).total_seconds(), 0.0)


async def _fire_together(
    conn: asyncpg.Connection, firings: list[Firing], now: datetime
) -> list[Firing]:
    """Fire the batch together whatever its size: the timers marked and the occurrences
    recorded (one statement), then the events of those fired first appended to their streams at
    once (three). Returns those fired."""
    first_in_batch: dict[tuple[str, str], Firing] = {}  # two timers of one occurrence
    for firing in firings:
        if firing.event is not None:
            first_in_batch.setdefault(firing.occurrence, firing)
    recorded = await conn.fetch(
        """WITH marked AS (
               UPDATE timers SET fired_at = $4 WHERE timer_id = ANY($3::uuid[]) RETURNING 1)
           INSERT INTO fired_occurrences
           SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING
           RETURNING ticket_id, occurrence""",
        [ticket_id for ticket_id, _ in first_in_batch],
        [occurrence for _, occurrence in first_in_batch],
        [f.row["timer_id"] for f in firings],
        now,
    )
    first = {(row["ticket_id"], row["occurrence"]) for row in recorded}
    fired = [firing for key, firing in first_in_batch.items() if key in first]
    streams: dict[str, list[NewEvent]] = {}
    for firing in fired:
        streams.setdefault(firing.row["ticket_id"], []).append(_new_event(firing))
    await append_to_streams(conn, streams, bounded=False)
    fired_ids = {firing.row["timer_id"] for firing in fired}
    for firing in firings:
        if firing.row["timer_id"] in fired_ids:
            _log_fired(firing)
        else:
            _log_not_fired(firing)
    return fired


async def _fire(conn: asyncpg.Connection, firing: Firing, now: datetime) -> bool:
    """Fire one timer (after its batch failed together); whether it fired."""
    row = firing.row
    if firing.event is None:
        await _done(conn, row, now)
        _log_not_fired(firing)
        return False
    first = await conn.fetchval(
        "INSERT INTO fired_occurrences VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        row["ticket_id"],
        row["occurrence"],
    )
    await _done(conn, row, now)
    if first is None:
        _log_not_fired(firing)
        return False
    try:
        async with conn.transaction():  # savepoint: a duplicate must not undo the marks above
            await append(conn, row["ticket_id"], None, [_new_event(firing)], bounded=False)
    except DuplicateEvent:
        log.info("timer_already_fired", ticket_id=row["ticket_id"], timer=str(row["timer_id"]))
        return False
    _log_fired(firing)
    return True


def _new_event(firing: Firing) -> NewEvent:
    assert firing.event is not None
    return NewEvent.from_event(
        firing.event,
        event_id=firing.row["timer_id"],
        metadata={"correlationid": firing.row["ticket_id"]},
    )


def _log_fired(firing: Firing) -> None:
    assert firing.event is not None
    log.info(
        "timer_fired",
        ticket_id=firing.row["ticket_id"],
        event_id=str(firing.row["timer_id"]),
        kind=firing.row["kind"],
        event_type=firing.event.event_type,
    )


def _log_not_fired(firing: Firing) -> None:
    row = firing.row
    if firing.event is None:  # the clock moved on since arming: a re-arm will follow its state
        log.info("timer_stale", ticket_id=row["ticket_id"], kind=row["kind"])
    else:  # re-armed under a new version but already fired: once is enough
        log.info("timer_already_fired", ticket_id=row["ticket_id"], occurrence=row["occurrence"])


async def _done(conn: asyncpg.Connection, row: asyncpg.Record, now: datetime) -> None:
    await conn.execute("UPDATE timers SET fired_at = $2 WHERE timer_id = $1", row["timer_id"], now)


def _event_for(
    desks: Desks, row: asyncpg.Record, kept: Mapping[str, Kept], now: datetime
) -> Event | None:
    """What the timer means now; None when its clock no longer says so (stale timer)."""
    kind = TimerKind(row["kind"])
    common = {
        "ticket_id": row["ticket_id"],
        "occurred_at": now,
        "armed_version": row["armed_version"],
        "due_at": row["fire_at"],
    }
    if kind is TimerKind.REMINDER:
        return ReminderDue(**common, days_waiting=row["days_waiting"] or 0)
    if kind is TimerKind.AUTO_CLOSE:
        return AutoCloseDue(**common)  # workflow checks it is not stale (armed version)
    ticket_id = row["ticket_id"]
    clocks = _clocks(desks, _request(kept.get(ticket_id), ticket_id), now)
    if clocks is None:
        return None
    reading = clocks.response if row["clock"] == ClockKind.RESPONSE else clocks.resolution
    if reading is None:
        return None
    if kind is TimerKind.SLA_BREACH:  # breached, even if it paused or stopped since
        return (
            SlaBreached(**common, clock=row["clock"], priority=clocks.priority)
            if (reading.breached)
            else None
        )
    running = reading.state is ClockState.RUNNING and reading.due_at is not None
    if not running or reading.breached or reading.warning_at is None or reading.warning_at > now:
        return None
    assert reading.due_at is not None
    return SlaWarningReached(
        **common, clock=row["clock"], priority=clocks.priority, breach_at=reading.due_at
    )
