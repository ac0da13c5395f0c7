"""The e-mail gateway's pure core: raw bytes -> `InboundMail` (parse) -> `Decision` (route).

No I/O and no clock: the application layer reads the tickets a message may refer to and the
sender's recent counts, passes them in, and carries the decision out.
"""

from intake.domain.mail.message import InboundMail, MailAttachment, SmtpEnvelope
from intake.domain.mail.parse import parse
from intake.domain.mail.route import (
    Comment,
    Decision,
    Defer,
    DeferKind,
    Drop,
    DropKind,
    GatewayConfig,
    NewRequest,
    Refuse,
    SenderCounts,
    desk_of,
    route,
    sender_check_of,
)
from intake.domain.mail.threading import References, references
from intake.domain.mail.trust import Dmarc, SenderCheck

__all__ = [
    "Comment",
    "Decision",
    "Defer",
    "DeferKind",
    "Dmarc",
    "Drop",
    "DropKind",
    "GatewayConfig",
    "InboundMail",
    "MailAttachment",
    "NewRequest",
    "References",
    "Refuse",
    "SenderCheck",
    "SenderCounts",
    "SmtpEnvelope",
    "desk_of",
    "parse",
    "references",
    "route",
    "sender_check_of",
]
