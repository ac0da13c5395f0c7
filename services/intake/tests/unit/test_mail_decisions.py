"""What became of each message, in a word of a bounded set, as the mail gateway's metrics count
it (`intake.application.mail_gateway.decision_of`, the SMTP edge's `decided`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

from mail_world import CONFIG, DIRECTORY, POLICIES, TICKETS, through_mx
from prometheus_client import CollectorRegistry

from desk_contracts.mail import RefusalReason
from intake.adapters.metrics import MailGatewayMetrics
from intake.adapters.smtp import GatewayHandler
from intake.application.mail_gateway import DECISIONS, Received, decision_of
from intake.domain.mail import Defer, DeferKind, Drop, DropKind, SmtpEnvelope, parse, route


def received(raw: bytes, mail_from: str = "anne@acme.example") -> Received:
    envelope = SmtpEnvelope(mail_from, ("support@saas-desk.example",))
    mail = parse(through_mx(raw), envelope)
    return Received(route(mail, CONFIG, POLICIES, DIRECTORY, TICKETS))


def mail(headers: str, sender: str = "anne@acme.example") -> bytes:
    head = f"From: {sender}\r\nMessage-ID: <m1@acme.example>\r\n{headers}"
    return (head + "\r\nThe export fails.\r\n").encode()


def test_each_decision_is_named_by_its_kind_and_reason() -> None:
    assert decision_of(received(mail("Subject: Export\r\n"))) == "new_request"
    reply = received(mail("Subject: Re: [PRB-1001] Export\r\n"))
    assert decision_of(reply) == "comment"
    stranger = received(mail("Subject: Export\r\n", "eve@freemail.example"), "eve@freemail.example")
    assert decision_of(stranger) == "refuse_unknown_sender"
    assert decision_of(received(mail("Subject: Export\r\n"), mail_from="")) == "drop_bounce"
    deferred = Received(Defer("not known yet", DeferKind.UNKNOWN_REQUEST))
    assert decision_of(deferred) == "defer_unknown_request"
    again = Received(received(mail("Subject: Export\r\n")).decision, duplicate=True)
    assert decision_of(again) == "duplicate"


def test_every_name_decision_of_may_give_is_one_of_the_bounded_set() -> None:
    names = {f"refuse_{r}" for r in RefusalReason} | {f"drop_{k}" for k in DropKind}
    names |= {f"defer_{k}" for k in DeferKind} | {"new_request", "comment", "duplicate"}
    assert names <= set(DECISIONS)
    assert len(DECISIONS) == len(set(DECISIONS))
    assert decision_of(Received(Drop("x", DropKind.REQUEST_FULL), full=True)) in DECISIONS


class Refusing:
    """An admission past capacity."""

    def refusal(self, door: str) -> str:
        return "1 events wait to be published, more than 0"

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        yield


async def test_a_message_shed_is_counted_once_however_many_recipients_were_refused() -> None:
    registry = CollectorRegistry()
    metrics = MailGatewayMetrics(registry)
    handler = GatewayHandler(
        cast(Any, None), CONFIG.addresses, admission=cast(Any, Refusing()), decided=metrics.decided
    )
    envelope = SimpleNamespace(rcpt_tos=[], mail_from="anne@acme.example")
    session = SimpleNamespace(peer=("192.0.2.1", 25), host_name="mx.test")
    for address in sorted(CONFIG.addresses)[:2]:
        answer = await handler.handle_RCPT(None, session, envelope, address, [])
        assert answer.startswith("451 4.3.2")
    envelope.content = envelope.original_content = b"Subject: Export\r\n\r\nHello\r\n"
    assert (await handler.handle_DATA(None, session, envelope)).startswith("451 4.3.2")
    counted = registry.get_sample_value("desk_mail_gateway_decisions_total", {"decision": "shed"})
    assert counted == 1
    zero = {"decision": "new_request"}  # every decision shown from the start
    assert registry.get_sample_value("desk_mail_gateway_decisions_total", zero) == 0
