"""The message templates are read and compiled once per process: a further message from the
same template touches neither the package's files nor the loader, and which messages exist is
known without looking."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from desk_contracts.mail import AutomaticReplyRequested, RefusalReason
from desk_policies.loader import load_policies
from notifier.adapters.templates import Templates
from notifier.domain.content import automatic_reply_context

POLICIES = load_policies()


def test_a_template_is_read_once_and_never_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    templates = Templates()
    loader = templates.text.loader
    assert loader is not None and loader is templates.html.loader
    reads: list[str] = []
    looks: list[Any] = []
    get_source, getmtime, isfile = loader.get_source, os.path.getmtime, os.path.isfile

    def read(environment: Any, name: str) -> Any:
        reads.append(name)
        return get_source(environment, name)

    def stat(path: Any) -> float:
        looks.append(path)
        return getmtime(path)

    def exists(path: Any) -> bool:
        looks.append(path)
        return isfile(path)

    monkeypatch.setattr(loader, "get_source", read)
    monkeypatch.setattr(os.path, "getmtime", stat)
    monkeypatch.setattr(os.path, "isfile", exists)
    request = AutomaticReplyRequested(
        ticket_id="zoe@elsewhere.example",
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        to="zoe@elsewhere.example",
        policy_id="erp-vendor",
        reason=RefusalReason.UNKNOWN_SENDER,
        language="fr",
        original_subject="Bonjour",
    )
    context = automatic_reply_context(request, POLICIES["erp-vendor"], "fr")
    first = templates.render("refusal_unknown_sender", "fr", context, None)
    assert sorted(set(reads)) == [
        "fr/layout.html.j2",
        "fr/layout.txt.j2",
        "fr/refusal_unknown_sender.j2",
    ]
    reads.clear()
    looks.clear()
    for _ in range(3):
        assert templates.render("refusal_unknown_sender", "fr", context, None) == first
    assert templates.has("TicketCreated", "en") and not templates.has("NoSuchMessage", "fr")
    assert (reads, looks) == ([], [])
