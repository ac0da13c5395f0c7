"""Which request a message answers: the key in its subject (`[SPT-1042]`), else the Message-IDs
it replies to (`In-Reply-To`, then `References`, newest first) that we sent, of the form
`<{ticket_id}.{anything}@{one of our domains}>`, or the one that opened a request by mail."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from intake.domain.mail.message import InboundMail

SUBJECT_KEY = re.compile(r"\[([A-Z][A-Z0-9]{0,9}-\d{1,9})\]")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class References:
    """What to look up, in order of trust: keys from the subject, ticket ids from our own
    Message-IDs, and every Message-ID replied to, lower-cased (a request opened by mail keeps
    its own)."""

    keys: tuple[str, ...] = ()
    ticket_ids: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keys or self.ticket_ids or self.message_ids)


def references(mail: InboundMail, own_domains: Collection[str]) -> References:
    keys = tuple(dict.fromkeys(SUBJECT_KEY.findall(mail.subject)))
    replied = tuple(
        dict.fromkeys(m.lower() for m in (*mail.in_reply_to, *reversed(mail.references)))
    )
    ticket_ids = tuple(
        dict.fromkeys(t for t in (ticket_of(m, own_domains) for m in replied) if t is not None)
    )
    return References(keys=keys, ticket_ids=ticket_ids, message_ids=replied)


def ticket_of(message_id: str, own_domains: Collection[str]) -> str | None:
    """The ticket id inside a Message-ID we sent (None: not ours, or not about a ticket)."""
    local, at, domain = message_id.strip("<>").lower().rpartition("@")
    if not at or domain not in own_domains:
        return None
    candidate = local.split(".", 1)[0]
    return candidate if _UUID.match(candidate) else None
