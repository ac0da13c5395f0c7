"""The directory: who belongs where, by entry or by mail domain; precise load errors."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("a..b@acme.example", "two periods in a row"),  # the old pattern took these
        ("anne@acme..example", "two periods in a row"),
        ('"anne smith"@acme.example', "is not an e-mail address"),
        ("anne@[192.0.2.1]", "is not an e-mail address"),
        ("Anne <anne@acme.example>", "is not an e-mail address"),
        ("anne@localhost.localhost", "special-use or reserved name"),
    ],
)
def test_the_loader_refuses_an_entry_whose_email_is_not_an_address(
    tmp_path: Path, email: str, why: str
) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(
        "people:\n  - {name: Anne, email: ok@acme.example}\n"
        f"  - name: Other\n    email: '{email}'\n",
        encoding="utf-8",
    )
    with pytest.raises(DirectoryError) as caught:
        load_directory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid directory")
    assert "people.1.email: " in message and "is not an e-mail address" in message
    assert why in message


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("acme..example", "two periods in a row"),
        ("acme", "should have a period"),
        ("acme example", "invalid characters"),
        ("@acme.example", "is not a mail domain"),
        ("acme.test", "special-use or reserved name"),
    ],
)
def test_an_organisations_mail_domains_must_be_domain_names(domain: str, why: str) -> None:
    data = {"organisations": [{"id": "acme", "name": "ACME", "domains": ["ok.example", domain]}]}
    with pytest.raises(DirectoryError) as caught:
        parse_directory(data, "dir.yaml")
    message = str(caught.value)
    assert "organisations.0.domains.1: " in message and "is not a mail domain" in message
    assert why in message and message.startswith("dir.yaml: invalid directory")


def test_addresses_and_domains_are_kept_as_the_address_rule_writes_them() -> None:
    directory = parse_directory(
        {
            "organisations": [{"id": "acme", "name": "ACME", "domains": ["ACMÉ.Example"]}],
            "people": [{"email": " Bruno@ACME.example ", "name": "B", "organisation": "acme"}],
        }
    )
    assert directory.organisations[0].domains == ("xn--acm-dma.example",)
    assert directory.people[0].email == "bruno@acme.example"
    assert directory.organisation_of("someone@xn--acm-dma.example") == "acme"
    assert directory.may_take_part("BRUNO@acme.example", "acme", "saas-desk") is None


def test_only_staff_of_the_desk_may_be_assigned() -> None:
    directory = load_directory()
    assert directory.may_be_assigned("paul@desk.example", "saas-desk") is None
    assert directory.may_be_assigned("Lea@Desk.Example", "cloud-partner") is None
    refusals = {
        "sales@desk.example": "is not staff of desk 'saas-desk'",  # staff of erp-vendor only
        "anne@acme.example": "is not staff of desk 'saas-desk'",  # a customer
        "someone@desk.example": "is not staff of desk 'saas-desk'",  # the domain admits no one
        "a..b@desk.example": "is not an e-mail address",
    }
    for address, why in refusals.items():
        refused = directory.may_be_assigned(address, "saas-desk")
        assert refused is not None and why in refused, (address, refused)


def test_a_customer_files_into_their_own_organisation_and_staff_into_a_known_one() -> None:
    from desk_policies.model import Side

    directory = load_directory()
    assert directory.may_file_into("Anne@acme.example", "acme", Side.CUSTOMER) is None
    assert directory.may_file_into("newcomer@acme.example", "acme", Side.CUSTOMER) is None
    for submitter, organisation in (
        ("anne@acme.example", "globex"),
        ("anne@acme.example", "nowhere"),
        ("stranger@elsewhere.example", "acme"),
        ("paul@desk.example", "acme"),  # staff acting as a requester are not of acme
    ):
        refused = directory.may_file_into(submitter, organisation, Side.CUSTOMER)
        assert refused is not None and "their own organisation only" in refused, submitter
    assert directory.may_file_into("sales@desk.example", "globex", Side.SUPPORT) is None
    unknown = directory.may_file_into("sales@desk.example", "nowhere", Side.SUPPORT)
    assert unknown == "'nowhere' is not an organisation of the directory"


def test_a_verified_identity_places_a_customer_in_its_organisation() -> None:
    """The organisation a signed identity carries is believed before the directory's guess."""
    from desk_policies.model import Side

    directory = load_directory()
    file_into = directory.may_file_into
    assert file_into("newcomer@globex.example", "acme", Side.CUSTOMER, placed_in="acme") is None
    refused = file_into("anne@acme.example", "acme", Side.CUSTOMER, placed_in="globex")
    assert refused is not None and "their own organisation only" in refused
    # staff file on a client's behalf into an organisation the directory lists, whatever
    assert file_into("sales@desk.example", "globex", Side.SUPPORT, placed_in="acme") is None
