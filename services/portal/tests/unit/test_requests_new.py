"""The new-request form's pure rules: who belongs to which desk and creates which types, safe
file names and content types, participants, intake's refusals by field, and the attachments a
request shows its reader."""

from __future__ import annotations

import pytest

from desk_contracts.identity import Identity
from desk_policies.audience import Audience, identity_reads
from desk_policies.description import desk_for
from desk_policies.loader import load_policies
from portal.domain import requests_new as n

POLICIES = load_policies()
ANNE = Identity("anne@acme.example", "Anne", "acme", {}, frozenset(("read", "write")), "password")
SALES = Identity(
    "sales@desk.example", "Sales", None, {"erp-vendor": ("sales_admin",)},
    frozenset(("read", "write")), "password",
)  # fmt: skip


def told(identity: Identity) -> list[dict[str, object]]:
    reads = identity_reads(identity, POLICIES.values())
    return [desk_for(p, reads.get(p.id)).model_dump(mode="json") for p in POLICIES.values()]


def test_a_customer_belongs_to_every_desk_and_creates_no_licence() -> None:
    desks = n.member_desks(ANNE, POLICIES, told(ANNE))
    assert {d["id"] for d in desks} == set(POLICIES)
    erp = next(d for d in desks if d["id"] == "erp-vendor")
    types = n.creatable_types(erp, n.desk_roles(ANNE, POLICIES["erp-vendor"]))
    assert [(t["id"], role) for t, role in types] == [
        ("support", "requester"), ("patch", "requester"), ("patch_after_migration", "requester")
    ]  # fmt: skip


def test_sales_administration_belongs_to_its_desk_and_creates_licences() -> None:
    desks = n.member_desks(SALES, POLICIES, told(SALES))
    assert [d["id"] for d in desks] == ["erp-vendor"]
    types = n.creatable_types(desks[0], n.desk_roles(SALES, POLICIES["erp-vendor"]))
    assert [(t["id"], role) for t, role in types] == [("licence", "sales_admin")]


def test_the_customer_side_reads_each_desks_guide() -> None:
    erp = desk_for(POLICIES["erp-vendor"], Audience.CUSTOMER).model_dump(mode="json")
    assert "consulting" in erp["guide"]["when_to_open"]["fr"]
    assert erp["guide"]["field_help"]["product_version"]["en"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\anne\\écran.png", "écran.png"),
        ("a\x00b\u202e.txt", "ab.txt"),
        ("", "attachment"),
        ("...", "attachment"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_a_file_name_is_made_safe(sent: str, stored: str) -> None:
    assert n.safe_filename(sent) == stored
    assert len(n.safe_filename(sent)) <= n.MAX_FILENAME


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("image/png", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("", "application/octet-stream"),
        ("text/html\r\nX: y", "application/octet-stream"),
        ("a/" + "b" * 300, "application/octet-stream"),
    ],
)
def test_a_content_type_is_kept_only_when_it_is_one(sent: str, kept: str) -> None:
    assert n.safe_content_type(sent) == kept


def test_participants_one_a_line() -> None:
    typed = "bruno@acme.example\n\n  carla@acme.example , bruno@acme.example\n"
    assert n.participants_of(typed) == ["bruno@acme.example", "carla@acme.example"]


def test_intakes_refusals_by_field() -> None:
    answer = {"detail": [
        {"loc": ["body", "subject"], "msg": "too short", "type": "x"},
        {"loc": ["body", "attachments", 0, "sha256"], "msg": "bad", "type": "x"},
        {"loc": ["header", "idempotency-key"], "msg": "used", "type": "x"},
    ]}  # fmt: skip
    assert n.refused_fields(answer) == {"subject": "too short", "attachments": "bad", "": "used"}
    assert n.refused_fields({"detail": "nope"}) == {"": "nope"}


def test_an_attachment_is_found_in_any_entry_the_reader_sees() -> None:
    shot = {"filename": "a.png", "content_type": "image/png", "size": 1, "sha256": "a" * 64}
    later = {**shot, "sha256": "b" * 64}
    view = {"attachments": [shot, later]}  # workflow's: the files of every entry seen
    assert n.attachment_named(view, "a" * 64) == shot
    assert n.attachment_named(view, "b" * 64) == later
    assert n.attachment_named(view, "c" * 64) is None


def test_the_download_names_the_file_for_every_browser() -> None:
    header = n.content_disposition('écran "1".png')
    assert (
        header
        == "attachment; filename=\"_cran _1_.png\"; filename*=UTF-8''%C3%A9cran%20%221%22.png"
    )
