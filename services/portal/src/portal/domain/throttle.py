"""Sign-in throttling (pure): repeated failures lock a key for a while.

Attempts are counted per key before the password is checked (so guesses sent in parallel
count as well): the address as typed (whether or not an account has it, so the answers never
tell an attacker which addresses exist) and the client's network address. After
`MAX_FAILURES` attempts within `WINDOW`, the key is locked for `LOCK`; a success clears the
address's count. A locked key is refused before the password is even checked. The same
counting bounds the mail a page sends (`mail_address`, `mail_client`): an address is mailed a
few links an hour at most, whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
MAX_FAILURES = {"address": 5, "client": 50, "mail_address": 5, "mail_client": 30}


@dataclass(frozen=True)
class Failures:
    """A key's failures: how many since `first_at`, and the lock they led to."""

    failures: int
    first_at: datetime
    locked_until: datetime | None = None


def locked_for(state: Failures | None, now: datetime) -> timedelta | None:
    """How long the key stays locked (None: it is not)."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return state.locked_until - now


def after_attempt(state: Failures | None, kind: str, now: datetime) -> Failures:
    """The key's count after one more attempt, locked when it reaches its kind's maximum (a
    locked key stays as it is until its lock ends)."""
    if locked_for(state, now) is not None:
        assert state is not None
        return state
    if state is None or now - state.first_at > WINDOW:
        state = Failures(0, now)
    failures = state.failures + 1
    locked = now + LOCK if failures >= MAX_FAILURES[kind] else None
    return Failures(failures, state.first_at, locked)
