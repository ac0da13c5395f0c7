"""Message-IDs and threading headers of our mail (pure).

A notification's Message-ID is derived from (event id, recipient): a re-send after a crash
carries the same one, so the duplicate is recognisable. Its form is
`<{ticket_id}.{digest}@{mail domain}>`: the inbound gateway reads the request back from a
reply's `In-Reply-To`/`References`. Each message to a person answers the previous one we sent
them about the same request, back to the mail that created it, so mail clients show a request's
conversation as one thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

MAX_REFERENCES = 20  # the first (the request's origin) and the latest ones are kept


def message_id(ticket_id: str, event_id: str, recipient: str, domain: str) -> str:
    """Deterministic Message-ID of the message about `event_id` to `recipient`."""
    digest = hashlib.sha256(f"{event_id}/{recipient.lower()}".encode()).hexdigest()[:24]
    return f"<{ticket_id}.{digest}@{domain}>"


def automatic_reply_id(event_id: str, recipient: str, domain: str) -> str:
    """Message-ID of an automatic answer to refused inbound mail (no request, or not ours)."""
    digest = hashlib.sha256(f"{event_id}/{recipient.lower()}".encode()).hexdigest()[:24]
    return f"<auto.{digest}@{domain}>"


@dataclass(frozen=True)
class Thread:
    in_reply_to: str | None
    references: tuple[str, ...]


def thread(origin: str | None, previous: Sequence[str]) -> Thread:
    """Headers answering the latest of `previous` (ours, oldest first), rooted at `origin`
    (the Message-ID of the mail that created the request, if any)."""
    chain = [m for m in ([origin] if origin else []) + list(previous) if m]
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
    return Thread(chain[-1] if chain else None, tuple(chain))
