"""E-mail both ways through the whole system, each service a separate process, real SMTP.

A mail sent with smtplib to the gateway -> TicketCreated (channel email) on Kafka -> workflow
opens the request -> the notifier's acknowledgement lands in the SMTP sink, threaded to the
original (In-Reply-To = its Message-ID) -> the requester answers that acknowledgement by mail ->
the answer (without its quoted history) is in the request's history. An out-of-office answer
changes nothing; a stranger gets an automatic answer, once.
"""

from __future__ import annotations

import re
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from e2e_support import eventually, isolated_system, mails
from identity_support import bearer
from system import System

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    with isolated_system(
        database_url, kafka_bootstrap, tmp_path_factory.mktemp("system"), "e2e_mail"
    ) as running:
        yield running


def send(system: System, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", system.mail_port, timeout=10) as client:
        client.send_message(message)


def new_mail(sender: str, to: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2].strip('>')}>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def test_a_mail_becomes_a_request_and_a_reply_becomes_a_comment(system: System) -> None:
    agent = bearer(
        "paul@desk.example",
        audience="workflow",
        roles={"saas-desk": ["agent"]},
        signer=system.signer(),
    )
    workflow = httpx.Client(base_url=system.url("workflow"), timeout=10, headers=agent)
    original = new_mail(
        "Anne Martin <anne@acme.example>",
        "support@saas-desk.example",
        "Le rapport mensuel est vide",
        "Bonjour,\n\nDepuis lundi le rapport mensuel sort vide.\n\nCordialement,\nAnne",
    )
    send(system, original)
    send(system, original)  # delivered twice by a retrying MTA: still one request

    def acknowledgement() -> list[EmailMessage]:
        return [m for m in mails(system.mail_folder) if m["In-Reply-To"] == original["Message-ID"]]

    (ack,) = eventually(acknowledgement, 45)
    assert ack["To"] == "anne@acme.example"
    key = re.search(r"\[([A-Z]+-\d+)\]", str(ack["Subject"]))
    assert key, ack["Subject"]

    def opened() -> dict[str, Any] | None:
        response = workflow.get(f"/requests/{key.group(1)}")
        return response.json() if response.status_code == 200 else None

    detail = eventually(opened)
    assert detail["status"]["id"] == "open"
    assert detail["subject"] == "Le rapport mensuel est vide"
    (created,) = detail["history"]
    assert created["data"]["channel"] == "email"
    assert created["data"]["source_message_id"] == original["Message-ID"]

    reply = new_mail(
        "Anne Martin <anne@acme.example>",
        str(ack["From"]),
        "RE: " + str(ack["Subject"]),
        "Toujours vide ce matin, même après la mise à jour.\n\n"
        f"Le lun. 2 mars 2026 à 10:15, Support <{ack['From']}> a écrit :\n> Bonjour Anne,\n",
        In_Reply_To=str(ack["Message-ID"]),
        References=f"{original['Message-ID']} {ack['Message-ID']}",
    )
    send(system, reply)

    def commented() -> list[dict[str, Any]]:
        history = workflow.get(f"/requests/{key.group(1)}").json()["history"]
        return [h for h in history if h["data"].get("source_message_id") == reply["Message-ID"]]

    (comment,) = eventually(commented)
    assert comment["type"] in ("CommentAdded", "RequesterAnswered")
    assert comment["data"]["body"] == "Toujours vide ce matin, même après la mise à jour."
    assert comment["data"]["actor_id"] == "anne@acme.example"

    out_of_office = new_mail(
        "Anne Martin <anne@acme.example>",
        str(ack["From"]),
        "Réponse automatique : " + str(ack["Subject"]),
        "Je suis absente jusqu'au 9 mars.",
        In_Reply_To=str(ack["Message-ID"]),
        Auto_Submitted="auto-replied",
    )
    send(system, out_of_office)
    stranger = new_mail(
        "Eve <eve@freemail.example>", "support@saas-desk.example", "Reset my password", "Please."
    )
    send(system, stranger)
    answer = eventually(
        lambda: [m for m in mails(system.mail_folder) if m["To"] == "eve@freemail.example"]
    )
    assert answer[0]["Auto-Submitted"] == "auto-replied"
    assert answer[0]["In-Reply-To"] == stranger["Message-ID"]
    history = workflow.get(f"/requests/{key.group(1)}").json()["history"]
    assert len(history) == 2  # the out-of-office answer added nothing
    requests = workflow.get("/requests", params={"organisation_id": "acme"}).json()
    assert len(requests) == 1  # nor did the second delivery, nor the stranger
