"""intake's own metrics, on the process's registry (`desk_platform.metrics`):

- the e-mail gateway: `desk_mail_gateway_decisions_total{decision}`, what became of each
  message the SMTP edge was handed (`intake.application.mail_gateway.DECISIONS`: `new_request`,
  `comment`, `duplicate`, `refuse_<reason>`, `drop_<kind>`, `defer_<kind>`, `shed`,
  `not_storable`, `failed`);
- the HTTP process: `desk_survey_answers_total{desk, rating}`, survey answers recorded, by desk
  (policy id; `unknown` for a link naming a desk not configured here) and rating (1 to the
  desk's scale, at most 10). A second answer to a request (409) is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

from desk_platform.metrics import UNKNOWN_DESK
from intake.application.mail_gateway import DECISIONS


class MailGatewayMetrics:
    """The gateway's decisions counted on `registry`, every decision shown from the start."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "desk_mail_gateway_decisions",
            "messages the mail gateway was handed, by what became of each",
            ["decision"],
            registry=registry,
        )
        for decision in DECISIONS:
            self.decisions.labels(decision)

    def decided(self, decision: str) -> None:
        """Count a message's decision (one of `DECISIONS`)."""
        self.decisions.labels(decision).inc()


class SurveyMetrics:
    """The survey answers counted on `registry`, by desk and rating."""

    def __init__(self, registry: CollectorRegistry, desks: Iterable[str]) -> None:
        self.desks = frozenset(desks)
        self.answers = Counter(
            "desk_survey_answers",
            "survey answers recorded (once per request), by desk and rating",
            ["desk", "rating"],
            registry=registry,
        )

    def answered(self, desk: str, rating: int) -> None:
        """Count an answer recorded for `desk` (a desk not configured here as `unknown`)."""
        known = desk if desk in self.desks else UNKNOWN_DESK
        self.answers.labels(known, str(rating)).inc()
