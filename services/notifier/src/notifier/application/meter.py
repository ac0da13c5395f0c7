"""What the notifier tells of its messages as it works on them, by desk (the policy id; None
for a message whose desk is not known, such as rows recorded before the desk was kept).

The composition root's meter is Prometheus's (`notifier.adapters.metrics`); `UNMETERED` keeps
nothing (tests, tools).
"""

from __future__ import annotations

from typing import Protocol


class NotificationMeter(Protocol):
    """Told of each message rendered, sent, to be tried again, or given up."""

    def rendered(self, desk: str | None) -> None:
        """A message's words were rendered from its template (each time: a record handled
        again after its transaction was undone renders its messages again)."""

    def sent(self, desk: str | None) -> None:
        """The relay accepted a message, and it is marked sent."""

    def retried(self, desk: str | None) -> None:
        """A send attempt failed; the message will be tried again."""

    def failed(self, desk: str | None) -> None:
        """A message is given up for good."""


class Unmetered:
    """A `NotificationMeter` that keeps nothing."""

    def rendered(self, desk: str | None) -> None:
        """Nothing kept."""

    def sent(self, desk: str | None) -> None:
        """Nothing kept."""

    def retried(self, desk: str | None) -> None:
        """Nothing kept."""

    def failed(self, desk: str | None) -> None:
        """Nothing kept."""


UNMETERED: NotificationMeter = Unmetered()
