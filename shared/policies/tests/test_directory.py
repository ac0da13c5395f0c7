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
