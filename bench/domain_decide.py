"""Benchmark: the workflow's pure decide + evolve, per command, for each shipped desk.

Run: uv run python bench/domain_decide.py [--tickets N]

Each ticket plays a realistic life (opened by intake's `TicketCreated`, then triage, questions
and answers, priority change, comments, resolution, close) through `decide` then `evolve`; a
refused command is timed too, and so is replaying a ticket's stream from scratch (`fold`).
Opening the request is intake's work and is made before the timing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from desk_contracts.base import Event
from desk_contracts.tickets import Channel, TicketCreated
from desk_policies import SHIPPED, DeskPolicy, shipped_policy
from intake.domain.submission import Submission, Submitter, ticket_created
from workflow.domain import (
    Actor,
    AddComment,
    Assign,
    ChangePriority,
    Close,
    Command,
    ConfirmResolution,
    Qualify,
    Rejection,
    RequestInformation,
    Resolve,
    StartWork,
    Ticket,
    decide,
    evolve,
    fold,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ALICE = Actor("alice@acme.example", "requester", "acme")


def script(policy: DeskPolicy) -> list[Command]:
    """A ticket's life in this desk, in the roles its policy names."""
    agent = Actor("bob@desk.test", {"erp-vendor": "service_desk"}.get(policy.id, "agent"))
    code = policy.resolution_codes[0].id
    lower = ChangePriority(actor=agent, priority="medium", reason="workaround")
    if policy.id == "erp-vendor":
        front = Actor("fd@desk.test", "front_desk")
        middle: list[Command] = [
            Qualify(actor=front), Assign(actor=front, assignee_id="bob"), StartWork(actor=agent),
            RequestInformation(actor=agent, comment="version?"),
            AddComment(actor=ALICE, body="12.3"), lower,
            Resolve(actor=agent, resolution_code=code, comment="fixed"),
            ConfirmResolution(actor=ALICE), Close(actor=agent),
        ]  # fmt: skip
    elif policy.id == "cloud-partner":
        middle = [
            StartWork(actor=agent), RequestInformation(actor=agent, comment="logs?"),
            AddComment(actor=ALICE, body="attached"), lower,
            AddComment(actor=agent, body="looking", public=False),
            Resolve(actor=agent, resolution_code=code, comment="fixed"),
            ConfirmResolution(actor=ALICE),
        ]  # fmt: skip
    else:
        middle = [
            Assign(actor=agent, assignee_id="bob"), lower,
            Resolve(actor=agent, resolution_code=code, comment="do X"),
            AddComment(actor=ALICE, body="did not work"),
            Resolve(actor=agent, resolution_code=code, comment="do Y"),
            ConfirmResolution(actor=ALICE),
        ]  # fmt: skip
    return middle


def created(policy: DeskPolicy, ticket_id: str) -> TicketCreated:
    """The request as intake makes it (requests are created by intake, not by a command)."""
    kind = policy.request_types[0]
    submission = Submission(
        policy_id=policy.id, request_type=kind.id, priority="high", subject="Error",
        description="Steps", organisation_id="acme", requester=ALICE.id,
    )  # fmt: skip
    return ticket_created(
        submission, policy, Submitter(ALICE.id, ALICE.role), ticket_id=ticket_id, sequence=1,
        channel=Channel.PORTAL, now=T0,
    )  # fmt: skip


def run_ticket(policy: DeskPolicy, commands: list[Command], opening: TicketCreated) -> list[Event]:
    state = evolve(Ticket.blank(policy, opening.ticket_id), opening)
    now = T0
    events: list[Event] = [opening]
    for command in commands:
        now += timedelta(minutes=7)
        result = decide(state, command, now)
        if isinstance(result, Rejection):
            raise SystemExit(f"{policy.id}: {type(command).__name__} refused: {result}")
        for event in result:
            state = evolve(state, event)
            events.append(event)
    return events


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best-of-`repeat` seconds for one call of `fn`."""
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best.append(time.perf_counter() - start)
    return min(best)


def measure(policy_id: str, tickets: int) -> float:
    """Print one desk's figures; return its decide+evolve commands per second."""
    policy = shipped_policy(policy_id)
    commands = script(policy)
    openings = [created(policy, f"t-{i}") for i in range(tickets)]
    seconds = timed(lambda: [run_ticket(policy, commands, opening) for opening in openings])
    rate = tickets * len(commands) / seconds
    events = run_ticket(policy, commands, openings[0])
    closed = fold(Ticket.blank(policy, "t-0"), events)
    refusal = StartWork(actor=ALICE)
    r_seconds = timed(lambda: [decide(closed, refusal, T0) for _ in range(tickets * 5)])
    stream = (events * 50)[:50]  # a 50-event stream (the life above, repeated)
    f_seconds = timed(lambda: [fold(Ticket.blank(policy, "t"), stream) for _ in range(500)])
    print(f"{policy_id:<14} {len(commands):>11} {rate:>12,.0f} {1e6 / rate:>11.1f} "
          f"{tickets * 5 / r_seconds:>11,.0f} {500 / f_seconds:>15,.0f}")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=2000)
    tickets = parser.parse_args().tickets
    print(f"decide+evolve, {tickets} tickets per desk, best of 5 runs")
    print(f"{'desk':<14} {'cmds/ticket':>11} {'commands/s':>12} {'µs/command':>11} "
          f"{'refusals/s':>11} {'replays of 50/s':>15}")  # fmt: skip
    rates = [measure(policy_id, tickets) for policy_id in SHIPPED]
    print(f"mean {statistics.mean(rates):,.0f} commands/s (decide + evolve, one core)")


if __name__ == "__main__":
    main()
