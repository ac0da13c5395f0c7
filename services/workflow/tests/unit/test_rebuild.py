"""The rebuild's bookkeeping without a server: which requests' rows are ready for the copy, which
are to be written again, and the progress bar it draws."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from desk_contracts.base import Event
from desk_contracts.tickets import Channel, CommentAdded, TicketCreated
from desk_eventstore.records import LoggedEvent
from desk_policies.loader import load_policies
from workflow.application.tickets import VIEW_COLUMNS
from workflow.entrypoints.rebuild import Fold, ProgressBar

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def created(ticket_id: str) -> TicketCreated:
    return TicketCreated(
        ticket_id=ticket_id,
        occurred_at=NOW,
        key=f"SUP-{ticket_id}",
        policy_id="cloud-partner",
        request_type="support",
        priority="high",
        subject="Jira is slow",
        description="Since the upgrade",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


def comment(ticket_id: str, body: str) -> CommentAdded:
    return CommentAdded(
        ticket_id=ticket_id,
        occurred_at=NOW,
        actor_id="paul@partner.example",
        actor_role="agent",
        body=body,
        public=False,
    )


class Log:
    """Events as the store gives them to a fold, numbered as they are appended."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def __call__(self, event: Event) -> LoggedEvent:
        self.position += 1
        version = self.versions[event.ticket_id] = self.versions.get(event.ticket_id, 0) + 1
        return LoggedEvent(
            self.position,
            event.ticket_id,
            version,
            event.event_type,
            event.schema_version,
            event.model_dump_json(),
            NOW + timedelta(seconds=self.position),
        )


def test_a_row_is_ready_once_its_stream_is_folded_up_to_where_it_ended_at_the_start() -> None:
    log = Log()
    fold = Fold(POLICIES, ends={"a": 2, "b": 1})
    fold.apply(log(created("a")))
    assert fold.take() == []  # "a" has one more event to come
    fold.apply(log(created("b")))
    fold.apply(log(comment("a", "Toner vide")))
    ready = {row[0]: dict(zip(VIEW_COLUMNS, row, strict=True)) for row in fold.take()}
    assert set(ready) == {"a", "b"} and fold.take() == []
    assert ready["a"]["comments"] == "Toner vide" and ready["a"]["version"] == 2
    assert ready["a"]["updated_at"] == NOW + timedelta(seconds=3)  # its last event's
    assert fold.unwritten() == []


def test_a_request_changed_after_its_row_was_ready_or_opened_since_the_start_is_unwritten() -> None:
    log = Log()
    fold = Fold(POLICIES, ends={"a": 1})
    fold.apply(log(created("a")))
    assert [row[0] for row in fold.take()] == ["a"]
    fold.apply(log(comment("a", "Toner vide")))  # appended while the log was read
    fold.apply(log(created("c")))  # a request opened since the start
    fold.apply(log(comment("x", "not a request's stream")))
    assert fold.take() == []
    unwritten = {folded.state.ticket_id: folded for folded in fold.unwritten()}
    assert set(unwritten) == {"a", "c"}
    assert unwritten["a"].row()[VIEW_COLUMNS.index("comments")] == "Toner vide"
    assert fold.unwritten() == []  # each is written once
    fold.apply(log(comment("c", "Modèle Kyocera")))  # appended later still, under the lock
    assert [folded.state.ticket_id for folded in fold.unwritten()] == ["c"]
    assert set(fold.requests) == {"a", "c"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_the_share_read_the_rate_and_the_time_left_at_most_4_times_a_s() -> None:
    clock, out = Clock(), Terminal()
    bar = ProgressBar(out, clock)
    bar.start(100_000)
    clock.now += 1.0
    bar(50_000)
    clock.now += 0.1
    bar(55_000)  # too soon after the last drawing: not drawn
    clock.now += 0.2
    bar(60_000)
    drawings = out.getvalue().split("\r")[1:]
    assert len(drawings) == 3
    assert drawings[0] == "[" + "." * 30 + "]   0.0%  0 / 100,000  0 events/s  ETA -:--"
    assert drawings[1] == (
        "[###############...............]  50.0%  50,000 / 100,000  50,000 events/s  ETA 0:01"
    )
    assert "60.0%  60,000 / 100,000  46,154 events/s  ETA 0:01" in drawings[2]


def test_the_final_line_says_what_was_rebuilt_and_past_the_start_s_end_the_bar_is_full() -> None:
    clock, out = Clock(), Terminal()
    bar = ProgressBar(out, clock)
    bar.start(1_000)
    clock.now += 2.0
    bar(1_010)  # events appended during the rebuild
    bar.finish(200)
    last, final = out.getvalue().split("\r")[-1].split("\n")[:2]
    assert last.startswith("[" + "#" * 30 + "] 100.0%  1,010 / 1,010  505 events/s  ETA 0:00")
    assert final.startswith("read model rebuilt: 200 requests from 1,010 events in 0:02 (505")


def test_in_a_log_file_the_bar_is_a_line_every_ten_seconds() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar(out, clock)
    bar.start(1_000)
    for position in range(100, 1_001, 100):
        clock.now += 2.0
        bar(position)
    bar.finish(10)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split("%")[0][-5:].strip() for line in lines[:-1]] == [
        "0.0",
        "50.0",
        "100.0",
        "100.0",
    ]
    assert lines[-1].startswith("read model rebuilt: 10 requests from 1,000 events in 0:20")
