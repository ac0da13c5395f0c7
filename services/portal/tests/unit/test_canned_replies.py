"""Canned replies: the request's fields fill a text, other braces stay as typed, and what may
be kept is bounded."""

from __future__ import annotations

from portal.domain.canned import MAX_BODY, fill, problem


def test_fields_are_filled_and_other_braces_kept() -> None:
    text = "Bonjour {requester},\nvotre requête {key} ({subject}) {unknown} {0} {key.__class__}"
    filled = fill(text, {"requester": "Anne", "key": "SUP-7", "subject": "Rapport"})
    assert filled == "Bonjour Anne,\nvotre requête SUP-7 (Rapport) {unknown} {0} {key.__class__}"


def test_a_missing_value_leaves_nothing() -> None:
    assert fill("Signé {agent}.", {}) == "Signé ."


def test_titles_and_texts_are_bounded() -> None:
    assert problem("Merci", "Merci pour votre retour.") is None
    assert problem("", "text") == "canned.invalid_title"
    assert problem("two\nlines", "text") == "canned.invalid_title"
    assert problem("x" * 101, "text") == "canned.invalid_title"
    assert problem("ok", " ") == "canned.invalid_body"
    assert problem("ok", "a\x00b") == "canned.invalid_body"
    assert problem("ok", "a\ud800b") == "canned.invalid_body"
    assert problem("ok", "x" * (MAX_BODY + 1)) == "canned.invalid_body"
