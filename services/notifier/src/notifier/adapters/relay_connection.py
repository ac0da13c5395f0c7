"""One SMTP connection to the relay, kept open from one batch of messages to the next.

Opening a connection costs a TCP handshake, the relay's greeting and EHLO, and closing it a
QUIT: done for every batch, that was most of the exchange of a quiet desk (a message a tick).
The connection is reused while it works. Before reusing one that sat idle for `CHECK_AFTER`
seconds, a NOOP checks that the relay still has it (relays drop idle clients, a restarted one
drops everyone); if the NOOP fails, the connection is replaced at once, so no message fails for
it. One idle for `IDLE_CLOSE` seconds is closed with QUIT, as it is at shutdown (`close`).
A connection on which a message failed for any reason other than a refusal of that message or
of its recipient (after which the client has reset the transaction, RSET) is discarded, never
reused: its state is unknown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from email.message import Message

import aiosmtplib
import structlog

from notifier.adapters.mime import RawMessage

log = structlog.get_logger(__name__)
CHECK_AFTER = 2.0  # seconds idle after which a NOOP checks the connection before it is reused
IDLE_CLOSE = 30.0  # seconds idle after which the connection is closed (QUIT)


class RelayConnection:
    """The one SMTP connection of a sender (used by one batch at a time), opened on demand."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        *,
        check_after: float = CHECK_AFTER,
        idle_close: float = IDLE_CLOSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.check_after = check_after
        self.idle_close = idle_close
        self.clock = clock
        self.opened = 0  # connections opened so far
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

    @property
    def is_open(self) -> bool:
        """Whether a connection is kept (and, as far as the client knows, still up)."""
        return self._smtp is not None and self._smtp.is_connected

    async def send(self, message: RawMessage | Message) -> None:
        """Hand `message` to the relay over the kept connection (opened or replaced first if
        need be); raises what the client raises (the connection is discarded unless the relay
        refused only this message or its recipient)."""
        smtp = await self._ready()
        try:
            if isinstance(message, RawMessage):
                await smtp.sendmail(message.sender, message.recipients, message.content)
            else:
                await smtp.send_message(message)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPDataError):
            raise  # the client reset the transaction: the connection goes on
        except BaseException:
            self.discard()
            raise
        finally:
            self._last_used = self.clock()

    async def _ready(self) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is not None and smtp.is_connected:
            idle = self.clock() - self._last_used
            if idle < self.check_after:
                return smtp
            if idle < self.idle_close:
                try:
                    await smtp.noop()
                    return smtp
                except (aiosmtplib.SMTPException, OSError) as error:
                    log.info("relay_connection_replaced", error=str(error) or type(error).__name__)
            else:
                await self.close()
        self.discard()
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout)
        await smtp.connect()
        self._smtp = smtp
        self.opened += 1
        self._last_used = self.clock()
        return smtp

    def discard(self) -> None:
        """Drop the connection without a word to the relay (after a failure)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        """Close the connection politely (QUIT), if one is kept."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        smtp.close()

    async def close_if_idle(self) -> None:
        """Close the connection if it has been idle for `idle_close` seconds (or is gone)."""
        if self._smtp is None:
            return
        if not self._smtp.is_connected:
            self.discard()
        elif self.clock() - self._last_used >= self.idle_close:
            await self.close()
