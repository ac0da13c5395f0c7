"""The directory folded from its events (`with_event`), and the events that build a directory
(`import_events`): what each event does to the view, and the round trip as a property."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk_contracts.directory import (
    DATE_FORMATS,
    DirectoryEvent,
    OrganisationRecorded,
    PersonActivated,
    PersonDeactivated,
    PersonInvited,
    PersonLinked,
    PersonReactivated,
    PersonRegistered,
    PersonUnlinked,
    Profile,
    ProfileChanged,
    RoleGranted,
    RoleRevoked,
    directory_event,
)
from desk_policies.directory import (
    Directory,
    DirectoryDraft,
    DirectoryError,
    Organisation,
    Person,
    current_directory,
    import_events,
    load_directory,
    parse_directory,
    with_event,
    with_events,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BY = "lea@desk.example"


def at(**fields: Any) -> dict[str, Any]:
    return {"occurred_at": NOW, "by": BY, **fields}


ACME = OrganisationRecorded(**at(organisation_id="acme", name="ACME SA", domains=("acme.example",)))
ANNE = Profile(name="Anne Martin", phone="+33 1 23 45 67 89", language="fr", date_format="%d.%m.%Y")


def anne_invited() -> Directory:
    return with_events(
        Directory(),
        [
            ACME,
            PersonInvited(**at(email="anne@acme.example", profile=ANNE, organisation_id="acme")),
        ],
    )


def test_an_invited_person_is_listed_in_their_organisation_with_their_profile() -> None:
    directory = anne_invited()
    assert directory.organisations == (
        Organisation(id="acme", name="ACME SA", domains=("acme.example",)),
    )
    anne = directory.person("Anne@ACME.example")
    assert anne == Person(
        email="anne@acme.example",
        name="Anne Martin",
        phone="+33 1 23 45 67 89",
        organisation="acme",
        language="fr",
        date_format="%d.%m.%Y",
    )
    assert directory.may_take_part("anne@acme.example", "acme", "saas-desk") is None
    assert directory.language_of("anne@acme.example") == "fr"
    # activation proves the address to the portal; it changes nothing the rules read
    assert with_event(directory, PersonActivated(**at(email="anne@acme.example"))) == directory


def test_a_registered_person_is_listed_in_no_organisation_until_linked() -> None:
    directory = with_events(
        anne_invited(),
        [PersonRegistered(**at(email="newcomer@acme.example", profile=Profile(name="New")))],
    )
    newcomer = directory.person("newcomer@acme.example")
    assert newcomer is not None and newcomer.organisation is None
    refused = directory.may_take_part("newcomer@acme.example", "acme", "saas-desk")
    assert refused is not None and "neither a person of organisation 'acme'" in refused

    linked = with_event(
        directory, PersonLinked(**at(email="newcomer@acme.example", organisation_id="acme"))
    )
    assert linked.may_take_part("newcomer@acme.example", "acme", "saas-desk") is None
    unlinked = with_event(
        linked, PersonUnlinked(**at(email="newcomer@acme.example", organisation_id="acme"))
    )
    assert unlinked.may_take_part("newcomer@acme.example", "acme", "saas-desk") is not None
    # unlinked from an organisation they are not in: nothing changes
    other = PersonUnlinked(**at(email="anne@acme.example", organisation_id="globex"))
    assert with_event(unlinked, other) == unlinked


def test_a_profile_change_keeps_the_organisation_and_the_roles() -> None:
    directory = with_events(
        anne_invited(),
        [
            RoleGranted(**at(email="anne@acme.example", desk_id="saas-desk", role="agent")),
            ProfileChanged(**at(email="anne@acme.example", profile=Profile(name="Anne M."))),
        ],
    )
    anne = directory.person("anne@acme.example")
    assert anne is not None
    assert (anne.name, anne.phone, anne.language, anne.date_format) == (
        "Anne M.",
        None,
        "en",
        "%Y-%m-%d",
    )
    assert (anne.organisation, anne.roles) == ("acme", {"saas-desk": ("agent",)})


def test_roles_are_granted_once_and_revoked() -> None:
    paul = PersonInvited(**at(email="paul@desk.example", profile=Profile(name="Paul")))
    grant = RoleGranted(**at(email="paul@desk.example", desk_id="saas-desk", role="agent"))
    lead = RoleGranted(**at(email="paul@desk.example", desk_id="saas-desk", role="supervisor"))
    directory = with_events(Directory(), [paul, grant, lead, grant])
    assert [p.email for p in directory.in_role("saas-desk", "agent")] == ["paul@desk.example"]
    assert directory.person("paul@desk.example").roles == {  # type: ignore[union-attr]
        "saas-desk": ("agent", "supervisor")
    }
    assert directory.may_be_assigned("paul@desk.example", "saas-desk") is None
    revoke = RoleRevoked(**at(email="paul@desk.example", desk_id="saas-desk", role="agent"))
    directory = with_event(directory, revoke)
    assert directory.in_role("saas-desk", "agent") == ()
    assert directory.may_be_assigned("paul@desk.example", "saas-desk") is None  # supervisor
    directory = with_events(
        directory,
        [
            revoke,
            RoleRevoked(**at(email="paul@desk.example", desk_id="saas-desk", role="supervisor")),
        ],
    )
    assert directory.person("paul@desk.example").roles == {}  # type: ignore[union-attr]
    refused = directory.may_be_assigned("paul@desk.example", "saas-desk")
    assert refused is not None and "is not staff of desk 'saas-desk'" in refused


def test_a_deactivated_person_leaves_the_view_and_comes_back_as_they_were() -> None:
    staff = with_events(
        anne_invited(),
        [
            PersonInvited(**at(email="lea@desk.example", profile=Profile(name="Léa"))),
            RoleGranted(**at(email="lea@desk.example", desk_id="cloud-partner", role="team_lead")),
        ],
    )
    gone = with_events(
        staff,
        [
            PersonDeactivated(**at(email="lea@desk.example")),
            PersonDeactivated(**at(email="anne@acme.example")),
        ],
    )
    assert gone.person("lea@desk.example") is None and gone.person("anne@acme.example") is None
    assert gone.in_role("cloud-partner", "team_lead") == ()  # receives no mail
    assert gone.may_be_assigned("lea@desk.example", "cloud-partner") is not None
    assert gone.may_take_part("anne@acme.example", "acme", "saas-desk") is not None
    assert [p.email for p in gone.deactivated] == ["lea@desk.example", "anne@acme.example"]
    # changes while deactivated are kept for their return; deactivating twice changes nothing
    gone = with_events(
        gone,
        [
            ProfileChanged(**at(email="lea@desk.example", profile=Profile(name="Léa Lead"))),
            PersonDeactivated(**at(email="lea@desk.example")),
        ],
    )
    back = with_event(gone, PersonReactivated(**at(email="lea@desk.example")))
    lea = back.person("lea@desk.example")
    assert lea is not None and lea.name == "Léa Lead"
    assert [p.email for p in back.in_role("cloud-partner", "team_lead")] == ["lea@desk.example"]
    assert back.person("anne@acme.example") is None
    assert with_event(back, PersonReactivated(**at(email="lea@desk.example"))) == back


def test_an_organisation_recorded_again_is_changed_in_place() -> None:
    globex = OrganisationRecorded(**at(organisation_id="globex", name="Globex"))
    renamed = OrganisationRecorded(
        **at(organisation_id="acme", name="ACME AG", domains=("acme.example", "acme.ch"))
    )
    directory = with_events(anne_invited(), [globex, renamed])
    assert [(o.id, o.name) for o in directory.organisations] == [
        ("acme", "ACME AG"),
        ("globex", "Globex"),
    ]
    assert directory.organisation_of("someone@acme.ch") == "acme"


def test_a_person_may_be_named_before_their_organisation_is_recorded() -> None:
    """Streams are read from several partitions: a person's stream may come first."""
    invited = PersonInvited(**at(email="anne@acme.example", profile=ANNE, organisation_id="acme"))
    directory = with_events(Directory(), [invited, ACME])
    assert directory == with_events(Directory(), [ACME, invited])


def test_an_event_about_someone_unknown_is_refused_and_changes_nothing() -> None:
    draft = DirectoryDraft(anne_invited())
    with pytest.raises(DirectoryError, match=r"PersonLinked of 'nobody@acme\.example', whom"):
        draft.apply(PersonLinked(**at(email="nobody@acme.example", organisation_id="acme")))
    assert draft.directory() == anne_invited()


def test_invited_again_starts_the_person_afresh() -> None:
    """The first event of a person's stream seen again (a relay re-sending): what follows it
    in the stream comes again too, so the person is listed as that event says."""
    directory = with_events(
        anne_invited(),
        [
            RoleGranted(**at(email="anne@acme.example", desk_id="saas-desk", role="agent")),
            PersonDeactivated(**at(email="anne@acme.example")),
        ],
    )
    again = with_event(
        directory,
        PersonInvited(**at(email="anne@acme.example", profile=ANNE, organisation_id="acme")),
    )
    assert again == anne_invited()


def test_the_contract_refuses_what_the_view_could_not_hold() -> None:
    with pytest.raises(ValueError, match="is not a mail domain"):
        directory_event(
            "OrganisationRecorded",
            {
                **at(organisation_id="acme", name="ACME"),
                "domains": ["acme..example"],
                "occurred_at": NOW.isoformat(),
            },
        )
    with pytest.raises(ValueError, match="should match pattern"):
        PersonLinked(**at(email="anne@acme.example", organisation_id="ACME SA"))


def test_the_shipped_directory_is_imported_by_its_events() -> None:
    shipped = load_directory()
    events = import_events(shipped, now=NOW)
    assert {e.by for e in events} == {"import"} and {e.occurred_at for e in events} == {NOW}
    kinds = [e.event_type for e in events]
    assert kinds[:3] == ["OrganisationRecorded"] * 3
    assert kinds.count("PersonInvited") == len(shipped.people)
    assert "PersonActivated" not in kinds
    assert with_events(Directory(), events) == shipped
    # as the portal stores and publishes them: JSON data, read back by type
    read = [directory_event(e.event_type, e.model_dump(mode="json")) for e in events]
    assert read == events
    assert events[3].stream_id == "person:anne@acme.example"


def test_a_fixed_directory_or_a_callable_gives_the_current_one() -> None:
    shipped = load_directory()
    assert current_directory(shipped) is shipped
    views = [Directory(), shipped]
    assert current_directory(lambda: views[-1]) is shipped


def test_the_loader_refuses_an_address_or_an_organisation_listed_twice() -> None:
    with pytest.raises(DirectoryError, match=r"people\.1\.email: 'a@b.example' twice"):
        parse_directory(
            {
                "people": [
                    {"email": "a@b.example", "name": "A"},
                    {"email": "A@b.example", "name": "B"},
                ]
            }
        )
    with pytest.raises(DirectoryError, match=r"deactivated\.0\.email: 'a@b.example' twice"):
        parse_directory(
            {
                "people": [{"email": "a@b.example", "name": "A"}],
                "deactivated": [{"email": "a@b.example", "name": "B"}],
            }
        )
    with pytest.raises(DirectoryError, match=r"organisations\.1\.id: 'acme' twice"):
        parse_directory(
            {"organisations": [{"id": "acme", "name": "A"}, {"id": "acme", "name": "B"}]}
        )


# --- properties -------------------------------------------------------------------------------

ORGANISATION_IDS = st.text("abcdefgh0123456789-_.", min_size=1, max_size=8).map(lambda s: "o" + s)
LOCAL_PARTS = st.text("abcdefghij0123456789", min_size=1, max_size=8)
DESKS = ("saas-desk", "cloud-partner", "erp-vendor")
ROLES = ("agent", "team_lead", "supervisor", "front_desk")


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    """Valid directories: organisations with mail domains, customers and staff with roles,
    some deactivated (each organisation and address once)."""
    ids = draw(st.lists(ORGANISATION_IDS, unique=True, max_size=4))
    organisations = tuple(
        Organisation(
            id=id_,
            name=draw(st.text(min_size=1, max_size=30)),
            domains=tuple(
                draw(
                    st.lists(
                        st.sampled_from([f"o{n}.example", f"mail.o{n}.example"]),
                        unique=True,
                        max_size=2,
                    )
                )
            ),
        )
        for n, id_ in enumerate(ids)
    )
    emails = draw(st.lists(LOCAL_PARTS, unique=True, max_size=8))
    people = [
        Person(
            email=f"{local}@people.example",
            name=draw(st.text(min_size=1, max_size=40)),
            phone=draw(st.none() | st.text(max_size=40)),
            organisation=draw(st.none() | st.sampled_from(ids)) if ids else None,
            language=draw(st.sampled_from(["fr", "en"])),
            date_format=draw(st.sampled_from(DATE_FORMATS)),
            roles=draw(
                st.dictionaries(
                    st.sampled_from(DESKS),
                    st.lists(st.sampled_from(ROLES), max_size=3).map(tuple),
                    max_size=2,
                )
            ),
        )
        for local in emails
    ]
    cut = draw(st.integers(0, len(people)))
    return Directory(
        organisations=organisations, people=tuple(people[:cut]), deactivated=tuple(people[cut:])
    )


@given(directories())
def test_folding_the_import_of_a_directory_gives_it_back(directory: Directory) -> None:
    assert with_events(Directory(), import_events(directory, now=NOW)) == directory
    built = Directory()
    for event in import_events(directory, "someone@desk.example", now=NOW):
        built = with_event(built, event)
    assert built == directory


def by_entry(directory: Directory) -> tuple[dict[str, Organisation], dict[str, Person], set[str]]:
    """The directory without the order its entries came in."""
    return (
        {o.id: o for o in directory.organisations},
        {p.email: p for p in directory.people},
        {p.email for p in directory.deactivated},
    )


def interleaved(events: list[DirectoryEvent], picks: list[int]) -> list[DirectoryEvent]:
    """`events` in another order that keeps each stream's own order (as several partitions
    deliver them): `picks` choose the stream whose next event comes next."""
    streams: dict[str, list[DirectoryEvent]] = {}
    for event in events:
        streams.setdefault(event.stream_id, []).append(event)
    queues = list(streams.values())
    out: list[DirectoryEvent] = []
    for pick in picks:
        queues = [q for q in queues if q]
        if not queues:
            break
        out.append(queues[pick % len(queues)].pop(0))
    return out + [e for q in queues for e in q]


@given(directories(), st.lists(st.integers(0, 100), max_size=80))
def test_how_the_streams_interleave_does_not_change_the_directory(
    directory: Directory, picks: list[int]
) -> None:
    events = import_events(directory, now=NOW)
    assert by_entry(with_events(Directory(), interleaved(events, picks))) == by_entry(directory)


CHANGES = st.sampled_from(
    [
        lambda e: PersonLinked(**at(email=e, organisation_id="acme")),
        lambda e: PersonUnlinked(**at(email=e, organisation_id="acme")),
        lambda e: RoleGranted(**at(email=e, desk_id="saas-desk", role="agent")),
        lambda e: RoleRevoked(**at(email=e, desk_id="saas-desk", role="agent")),
        lambda e: RoleGranted(**at(email=e, desk_id="saas-desk", role="supervisor")),
        lambda e: PersonDeactivated(**at(email=e)),
        lambda e: PersonReactivated(**at(email=e)),
        lambda e: ProfileChanged(**at(email=e, profile=Profile(name="Changed", language="fr"))),
    ]
)


@given(
    st.lists(
        st.tuples(st.sampled_from(["anne@acme.example", "bruno@acme.example"]), CHANGES),
        max_size=12,
    ),
    st.integers(0, 14),
)
def test_a_stretch_of_events_sent_again_leaves_the_same_directory(
    changes: list[Any], since: int
) -> None:
    """A relay re-sends what follows its checkpoint after a crash: readers see it twice."""
    events: list[DirectoryEvent] = [
        ACME,
        PersonInvited(**at(email="anne@acme.example", profile=ANNE, organisation_id="acme")),
        PersonRegistered(**at(email="bruno@acme.example", profile=Profile(name="Bruno"))),
        *(change(email) for email, change in changes),
    ]
    once = with_events(Directory(), events)
    again = with_events(once, events[since:])
    assert by_entry(again) == by_entry(once)  # the same entries (their order is not a fact)
    assert set(again.organisations) == set(once.organisations)
