"""Addresses as they enter from outside: one address, syntactically valid, in lower case."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from desk_contracts.inputs import MAX_ADDRESS, Address

ADDRESS: TypeAdapter[str] = TypeAdapter(Address)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("anne@acme.example", "anne@acme.example"),
        (" Anne.Martin@ACME.Example ", "anne.martin@acme.example"),
        ("bruno+support@mail.acme.example", "bruno+support@mail.acme.example"),
        ("a@bücher.example", "a@xn--bcher-kva.example"),
    ],
)
def test_an_address_is_kept_in_lower_case(text: str, address: str) -> None:
    assert ADDRESS.validate_python(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "x@acme.example\r\nBcc: evil@evil.example",
        "not an address",
        "<script>",
        "../../etc/passwd",
        "Anne Martin <anne@acme.example>",
        "anne@acme.example, bruno@acme.example",
        '"anne martin"@acme.example',
        "anne@[127.0.0.1]",
        "anne@localhost",
        "anne..martin@acme.example",
        "anné@acme.example",
        "a" * MAX_ADDRESS + "@acme.example",
        "",
    ],
)
def test_what_is_not_one_address_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ADDRESS.validate_python(text)
    assert "e-mail address" in str(refused.value) or "at most" in str(refused.value)
    assert "\r\n" not in str(refused.value).split("input_value")[0]
