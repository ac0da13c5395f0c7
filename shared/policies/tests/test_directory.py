"""The directory: who belongs where, by entry or by mail domain; precise load errors."""

from __future__ import annotations

import pytest

from desk_policies.directory import DirectoryError, load_directory, parse_directory


def test_the_shipped_directory_knows_people_organisations_and_roles() -> None:
    directory = load_directory()
    assert directory.organisation_of("Anne@ACME.example") == "acme"
    assert directory.organisation_of("newcomer@acme.example") == "acme"  # by domain
    assert directory.organisation_of("stranger@elsewhere.example") is None
    assert directory.language_of("anne@acme.example") == "fr"
    assert directory.language_of("stranger@elsewhere.example", "en") == "en"
    assert [p.email for p in directory.in_role("cloud-partner", "team_lead")] == [
        "lea@desk.example"
    ]


def test_errors_name_the_field() -> None:
    with pytest.raises(DirectoryError, match=r"people\.0\.email"):
        parse_directory({"people": [{"email": "not-an-address", "name": "X"}]})
    with pytest.raises(DirectoryError, match="unknown organisation 'nope'"):
        parse_directory({"people": [{"email": "a@b.example", "name": "A", "organisation": "nope"}]})


def test_who_may_take_part_in_a_request_people_of_the_organisation_or_staff_of_the_desk() -> None:
    directory = load_directory()
    assert directory.may_take_part("Bruno@ACME.example", "acme", "saas-desk") is None
    assert directory.may_take_part("paul@desk.example", "acme", "saas-desk") is None  # agent
    assert directory.may_take_part("sales@desk.example", "acme", "erp-vendor") is None
    refusals = {
        "sales@desk.example": "nor staff of desk 'saas-desk'",  # staff of another desk only
        "carla@globex.example": "neither a person of organisation 'acme'",
        "newcomer@acme.example": "neither a person of organisation 'acme'",  # domain alone
        "spam@outside.example": "neither a person of organisation 'acme'",
        "x@acme.example\r\nBcc: evil@evil.example": "is not an e-mail address",
        "not an address": "is not an e-mail address",
        "<script>": "is not an e-mail address",
        "../../etc/passwd": "is not an e-mail address",
    }
    for address, why in refusals.items():
        refused = directory.may_take_part(address, "acme", "saas-desk")
        assert refused is not None and why in refused, (address, refused)
    assert "\r\n" not in str(directory.may_take_part("a\r\nb", "acme", "saas-desk"))


def test_a_requester_may_also_be_known_by_the_organisations_mail_domain() -> None:
    directory = load_directory()
    assert directory.may_request("newcomer@acme.example", "acme", "saas-desk") is None
    assert directory.may_request("anne@acme.example", "acme", "saas-desk") is None
    outsider = directory.may_request("victim@outside.example", "acme", "saas-desk")
    assert outsider is not None and "does not belong to organisation 'acme'" in outsider
    other = directory.may_request("carla@globex.example", "acme", "saas-desk")
    assert other is not None and "'carla@globex.example'" in other
    malformed = directory.may_request("a@acme.example\nBcc: b@c.example", "acme", "saas-desk")
    assert malformed is not None and "is not an e-mail address" in malformed
