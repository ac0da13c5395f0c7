"""The gateway's SMTP edge (aiosmtpd), served on the process's own event loop.

`RCPT TO` an address that is neither a desk's support address nor the address notifications
come from: 550. A message over the size limit: 552 (aiosmtpd's `data_size_limit`, announced in
EHLO as SIZE, so a client that declares its size is refused before sending). `250` is only said
once the message's events are committed; a database failure answers 451, so the sending MTA
retries later, and so does a young reply to a request this gateway does not know yet, or a
message whose sender's DNS could not be checked (the reason is said in the 451 line). A message
that cannot be parsed (MIME nested too deep, a parser failure) answers 554: retrying would not
help; so does one whose request or comment the store refuses for good (552 when its event would
be too large, 554 for a text it cannot hold, such as a NUL character; logged as
`mail_not_storable`), classified by `desk_eventstore.failures`; only other failures answer 451.
A reply to a request that has reached its size limit answers 552 5.2.2 saying to open a new
request. At most `max_concurrent` messages are handled at once (the others wait for a slot).
Past capacity (`desk_platform.admission`: the outbox backlog, or the messages in flight, over
their limits), `RCPT TO` a support address and `DATA` answer 451 4.3.2 saying why, so the
sending MTA retries later instead of queuing here. What became of each message is told to
`decided` (`intake.application.mail_gateway.decision_of`; `shed` once a message however many of
its recipients were refused, `not_storable`, `failed` for a 451 on a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from typing import Any, Protocol

import structlog
from aiosmtpd.smtp import SMTP

from desk_eventstore.failures import describe, is_data_refused
from desk_eventstore.store import EventRefused, EventTooLarge
from desk_platform.admission import Admission
from desk_platform.tracing import serving
from intake.application.mail_gateway import (
    FAILED,
    NOT_STORABLE,
    SHED,
    Received,
    decision_of,
)
from intake.domain.mail import SmtpEnvelope

log = structlog.get_logger(__name__)

MAX_CONCURRENT = 8  # messages handled at once (each may hold up to MAIL_MAX_BYTES in memory)


class Gateway(Protocol):
    async def receive(self, raw: bytes, envelope: SmtpEnvelope) -> Received: ...


class GatewayHandler:
    def __init__(
        self,
        gateway: Gateway,
        addresses: Collection[str],
        *,
        max_concurrent: int = MAX_CONCURRENT,
        admission: Admission | None = None,
        decided: Callable[[str], None] = lambda decision: None,
    ) -> None:
        self.gateway = gateway
        self.decided = decided  # told what became of each message (`decision_of`)
        self.addresses = frozenset(a.lower() for a in addresses)
        self.slots = asyncio.Semaphore(max(1, max_concurrent))
        self.admission = admission  # None: every message is admitted

    def _past_capacity(self) -> str | None:
        """The 451 answer past capacity (None: admitted)."""
        reason = None if self.admission is None else self.admission.refusal("smtp")
        return None if reason is None else f"451 4.3.2 Past capacity: {reason}; try again later"

    def _shed(self, envelope: Any) -> None:
        """Tell a message shed, once however many of its recipients (and its DATA) were."""
        if not getattr(envelope, "counted_shed", False):
            envelope.counted_shed = True
            self.decided(SHED)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip("<>").lower() not in self.addresses:
            return f"550 5.1.1 <{address}>: not a support address here"
        if (busy := self._past_capacity()) is not None:
            self._shed(envelope)
            return busy
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _handling(self) -> contextlib.AbstractContextManager[None]:
        """The message counted in flight (waiting for a slot included) while it is handled."""
        return contextlib.nullcontext() if self.admission is None else self.admission.handling()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else ""
        smtp_envelope = SmtpEnvelope(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=str(peer),
            helo=str(getattr(session, "host_name", None) or ""),
        )
        if (busy := self._past_capacity()) is not None:
            self._shed(envelope)
            return busy
        try:
            with (
                self._handling(),
                serving("smtp DATA", {"client.address": str(peer), "smtp.message.bytes": len(raw)}),
            ):
                async with self.slots:
                    received = await self.gateway.receive(raw, smtp_envelope)
        except Exception as error:
            if is_data_refused(error):
                self.decided(NOT_STORABLE)
                return _not_storable(error, str(session.peer), len(raw))
            self.decided(FAILED)
            log.exception("mail_not_taken", peer=str(session.peer), size=len(raw))
            return "451 4.3.0 Temporary failure, please try again later"
        self.decided(decision_of(received))
        if received.unparseable:
            return "554 5.6.0 The message cannot be parsed (MIME structure); not accepted"
        if received.full:  # the request is full for good: retrying would not help
            return f"552 5.2.2 {_reason(received)}"
        if received.deferred:
            return f"451 4.4.0 {_reason(received)}, try again later"
        return "250 2.0.0 OK"


def _not_storable(error: BaseException, peer: str, size: int) -> str:
    """The permanent refusal of a message whose event the store refuses (it would be again)."""
    log.warning("mail_not_storable", peer=peer, size=size, reason=describe(error))
    if isinstance(error, EventTooLarge):
        return ("552 5.3.4 The message is too large for a request or comment (its text and "
                "attachment names); not accepted")  # fmt: skip
    why = error.reason if isinstance(error, EventRefused) else "a value the store cannot hold"
    return f"554 5.6.0 The message cannot be stored ({_one_line(why)}); not accepted"


def _reason(received: Received) -> str:
    return _one_line(str(getattr(received.decision, "reason", "")))


def _one_line(reason: str) -> str:
    reason = reason or "Not now"
    return " ".join("".join(c if c.isprintable() else " " for c in reason[:200]).split())


async def serve(
    handler: GatewayHandler, host: str, port: int, *, max_bytes: int, hostname: str
) -> asyncio.Server:
    """An SMTP server on the running loop (not aiosmtpd's threaded Controller, whose own loop
    could not use this process's database pool)."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="desk mail gateway",
            timeout=120,
            loop=loop,
        )

    return await loop.create_server(protocol, host, port)
