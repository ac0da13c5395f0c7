"""Who may create which request type is the desk policy's `creators`, checked by intake (pure)."""

from __future__ import annotations

from desk_policies import shipped_policy
from desk_policies.directory import load_directory
from intake.domain.submission import Submission, Submitter, check

ERP = shipped_policy("erp-vendor")
PEOPLE = load_directory()


def licence_request() -> Submission:
    return Submission(
        policy_id="erp-vendor", request_type="licence", priority="low",
        subject="Licence key for 2027", description="Renewal", organisation_id="acme",
        requester="anne@acme.example",
    )  # fmt: skip


def test_a_requester_may_not_create_a_licence_request() -> None:
    refusal = check(licence_request(), ERP, Submitter("anne@acme.example", "requester"), PEOPLE)
    assert refusal is not None and refusal.kind == "forbidden"
    assert "may not create LIC requests (only: sales_admin)" in refusal.reason


def test_sales_administration_creates_it_on_the_client_s_behalf() -> None:
    assert (
        check(licence_request(), ERP, Submitter("sales@desk.example", "sales_admin"), PEOPLE)
        is None
    )
