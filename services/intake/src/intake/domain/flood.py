"""Hourly flood limits of `POST /requests` (the web form and the API), pure.

In each fixed one-hour window a submitter (whom the verified identity names) may open
`per_submitter` requests, the requesters of one mail domain together `per_domain`, and one desk
`per_desk`. Staff of the desk (a role in it in the directory) creating a request on a customer's
behalf are counted for themselves and for the desk, not for the customer's mail domain: a busy
customer domain does not lock its own desk's staff out. The counters are the mail gateway's
(`mail_sender_counts`) under kinds of their own, so the two channels never use up each other's
hour. Over a limit, the answer says which one, without echoing the input, and how many seconds
remain until the window frees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

SUBMITTER = "request"  # counter kinds in `mail_sender_counts`
DOMAIN = "request_domain"
DESK = "request_desk"


@dataclass(frozen=True)
class RequestLimits:
    """Requests per hour (REQUESTS_SUBMITTER_HOURLY_LIMIT, REQUESTS_DOMAIN_HOURLY_LIMIT,
    REQUESTS_DESK_HOURLY_LIMIT)."""

    per_submitter: int = 30
    per_domain: int = 100
    per_desk: int = 1000


@dataclass(frozen=True)
class Flooded:
    """A limit this request goes over: which (`kind`), why, and when to try again."""

    kind: str
    reason: str
    retry_after: int  # seconds until the window frees


def counted_for(submitter: str, requester: str, desk: str, *, staff: bool) -> dict[str, str]:
    """The counters a request counts for, by kind (in this order, always, so that concurrent
    upserts of the same rows cannot deadlock)."""
    keys = {SUBMITTER: submitter.lower()}
    if not staff:
        keys[DOMAIN] = requester.rpartition("@")[2].lower()
    keys[DESK] = desk
    return keys


def over_limit(counts: Mapping[str, int], limits: RequestLimits, now: datetime) -> Flooded | None:
    """The first limit that `counts` (this hour's, this request included) go over, if any."""
    retry_after = seconds_to_next_window(now)
    if counts.get(SUBMITTER, 0) > limits.per_submitter:
        why = f"this submitter has opened {limits.per_submitter} requests this hour"
        return Flooded(SUBMITTER, f"{why}, the most allowed", retry_after)
    if counts.get(DOMAIN, 0) > limits.per_domain:
        why = f"the requester's mail domain has opened {limits.per_domain} requests this hour"
        return Flooded(DOMAIN, f"{why}, the most allowed", retry_after)
    if counts.get(DESK, 0) > limits.per_desk:
        why = f"this desk has received {limits.per_desk} requests this hour"
        return Flooded(DESK, f"{why}, the most it takes", retry_after)
    return None


def window_of(now: datetime) -> datetime:
    """The start of the hour `now` is in (the window it counts in)."""
    return now.replace(minute=0, second=0, microsecond=0)


def seconds_to_next_window(now: datetime) -> int:
    """Whole seconds until the next hour begins (at least 1)."""
    elapsed = (now - window_of(now)).total_seconds()
    return max(1, 3600 - int(elapsed))
