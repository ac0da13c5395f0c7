"""Kafka topic names and their settings: the one place every service and the deploy scripts read."""

from __future__ import annotations

from dataclasses import dataclass, field

# every ticket's events, published by workflow alone with the request's state after each one
# (desk_contracts.state), key = ticket id, kept forever
TICKET_EVENTS = "ticket-events"
# workflow's input, key = ticket id: intake's new requests (TicketCreated) and requesters'
# actions, sla's reminder and auto-close commands, the notifier's failed deliveries
TICKET_COMMANDS = "ticket-commands"
SLA_EVENTS = "sla-events"  # clock warnings and breaches, key = ticket id, kept forever
AUTOMATIC_REPLIES = "automatic-replies"  # answers to refused inbound mail, key = sender
# the directory's events (desk_contracts.directory), published by the portal alone, key = stream
# id (`person:<address>`, `organisation:<id>`), kept forever: every reader folds it from the start
DIRECTORY = "directory"
# the test clocks' changes (desk_contracts.testclocks), published by sla alone, key = the clock's
# stream id; empty where test clocks are not enabled (production)
TEST_CLOCKS = "test-clocks"
DEAD_LETTER_SUFFIX = ".dlt"

# The largest record a topic takes (`max.message.bytes`, Kafka's default made explicit) and the
# largest event the store accepts (payload and metadata as JSON): the rest is room for the key,
# the CloudEvents headers, a dead letter's error and origin headers, and the record's framing.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024

# The most one ticket's stream holds of people's writes: events (a large desk tool caps a
# ticket at 5,000 comments) and bytes of JSON in total. Past either, the store refuses people's
# commands; the desk's own events (reminders, auto-close, failed deliveries, survey answers) are
# still appended, so the bound can be passed by those alone.
MAX_STREAM_EVENTS = 2_000
MAX_STREAM_BYTES = 8 * 1024 * 1024


def dead_letter(topic: str) -> str:
    """Name of the dead-letter topic for `topic`."""
    return topic + DEAD_LETTER_SUFFIX


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: dict[str, str] = field(
        default_factory=lambda: {
            "retention.ms": "-1",
            "cleanup.policy": "delete",
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }
    )


MAIN_TOPICS = (TICKET_EVENTS, TICKET_COMMANDS, SLA_EVENTS, AUTOMATIC_REPLIES, DIRECTORY)


def _test_clocks_topic() -> TopicSpec:
    """`test-clocks`: read whole by the processes that follow it, never by a consumer group (no
    dead-letter twin), and compacted: a reader needs each clock's latest state only (its key)."""
    spec = TopicSpec(TEST_CLOCKS)
    spec.config["cleanup.policy"] = "compact"
    return spec


TOPICS: tuple[TopicSpec, ...] = (
    tuple(TopicSpec(name) for name in MAIN_TOPICS)
    + tuple(TopicSpec(dead_letter(name)) for name in MAIN_TOPICS)
    + (_test_clocks_topic(),)
)
