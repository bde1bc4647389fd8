"""Grouping a project's records into people: converted Leads join their Contact, CampaignMembers their Lead or
Contact, records sharing a normalised email join each other; ids stable, opt-outs merged."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_sync.sync.identity import (
    IdentityRecord,
    Person,
    group_people,
    identity_record,
    make_person,
    normalise_email,
)

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def record(object_type: str, salesforce_id: str, email: str | None = None, *, integration: str = "crm",
           unsubscribed: bool | None = False, minutes: int = 0, **properties: str) -> IdentityRecord:
    return identity_record(f"sf_{integration}_{object_type}_{salesforce_id}", integration, object_type, email, unsubscribed, T0 + timedelta(minutes=minutes), properties)


def people_of(records: list[IdentityRecord]) -> dict[frozenset[str], object]:
    """{the members' salesforce ids: the person}."""
    return {frozenset(m.salesforce_id for m in person.members): person for person in group_people(records)}


@pytest.mark.parametrize("raw, expected", [
    ("  Ada@Example.COM ", "ada@example.com"),
    ("STRASSE@BEISPIEL.DE", "strasse@beispiel.de"),
    ("ÅSA@EXAMPLE.SE", "åsa@example.se"),
    ("first.last@gmail.com", "first.last@gmail.com"),  # no provider tricks unless asked
    ("n/a", None), ("", None), ("   ", None), ("a@b@c", None), ("@example.com", None), ("ada@", None),
    ("ada lovelace@example.com", None), (None, None),
])
def test_email_normalisation_is_conservative(raw: str | None, expected: str | None) -> None:
    assert normalise_email(raw) == expected


def test_dots_are_dropped_only_for_configured_domains() -> None:
    assert normalise_email("First.Last@Gmail.com", dotless_domains=frozenset({"gmail.com"})) == "firstlast@gmail.com"
    assert normalise_email("first.last@example.com", dotless_domains=frozenset({"gmail.com"})) == \
        "first.last@example.com"


def test_a_converted_lead_joins_its_contact_even_with_another_email() -> None:
    lead = record("Lead", "00Q1", "old@example.com", converted_contact_id="0031")
    assert lead.converted and lead.links == ("sf_crm_Contact_0031",)
    assert not record("Lead", "00Q2", converted_contact_id=None).converted
    contact = record("Contact", "0031", "new@example.com", minutes=-5)
    other = record("Contact", "0032", "someone@example.com")
    people = people_of([lead, contact, other])
    assert set(people) == {frozenset({"00Q1", "0031"}), frozenset({"0032"})}
    person = people[frozenset({"00Q1", "0031"})]
    # the Contact speaks for the person although the Lead changed later
    assert person.primary == contact and person.email == "new@example.com"


def test_same_email_in_another_case_or_with_spaces_joins_across_objects_and_integrations() -> None:
    lead = record("Lead", "00Q1", "Ada@Example.com ")
    contact = record("Contact", "0031", " ada@example.COM", integration="eu")
    member = record("CampaignMember", "00v1", "ADA@EXAMPLE.COM")
    stranger = record("Lead", "00Q2", "grace@example.com")
    people = people_of([lead, contact, member, stranger])
    assert set(people) == {frozenset({"00Q1", "0031", "00v1"}), frozenset({"00Q2"})}


def test_campaign_members_join_their_lead_or_contact_and_records_without_email_stay_apart() -> None:
    lead = record("Lead", "00Q1", None)
    member = record("CampaignMember", "00v1", None, lead_id="00Q1")
    contact_member = record("CampaignMember", "00v2", None, contact_id="0039")  # its Contact is not synced
    contact_member_2 = record("CampaignMember", "00v3", None, contact_id="0039")
    loners = [record("Lead", "00Q2"), record("Lead", "00Q3")]  # no email: nothing joins them
    people = people_of([member, lead, contact_member, contact_member_2, *loners])
    assert set(people) == {frozenset({"00Q1", "00v1"}), frozenset({"00v2", "00v3"}), frozenset({"00Q2"}),
                           frozenset({"00Q3"})}
    # the same Salesforce id in another integration is another record
    assert len(people_of([record("Lead", "00Q1"), record("CampaignMember", "00v1", integration="eu",
                                                         lead_id="00Q1")])) == 2


def test_links_are_transitive_in_any_order() -> None:
    chain = [record("CampaignMember", "00v1", lead_id="00Q1"), record("Lead", "00Q1", "a@x.io",
                                                                      converted_contact_id="0031"),
             record("Contact", "0031", "b@x.io"), record("Lead", "00Q2", "B@x.io")]
    for ordering in (chain, chain[::-1], chain[2:] + chain[:2]):
        (person,) = group_people(ordering)
        assert {m.salesforce_id for m in person.members} == {"00v1", "00Q1", "0031", "00Q2"}


def test_person_id_is_stable_when_unrelated_records_change_or_join_elsewhere() -> None:
    ada = [record("Lead", "00Q5", "ada@example.com"), record("Contact", "0037", "ada@example.com")]
    grace = record("Lead", "00Q1", "grace@example.com")
    before = people_of([*ada, grace])
    after = people_of([record("Lead", "00Q0", "new@example.com"), grace, *ada[::-1],
                       record("CampaignMember", "00v0", "ADA@example.com")])
    assert before[frozenset({"00Q5", "0037"})].person_id == after[frozenset({"00Q5", "0037", "00v0"})].person_id
    assert before[frozenset({"00Q1"})].person_id == after[frozenset({"00Q1"})].person_id
    assert len({p.person_id for p in after.values()}) == 3


def test_one_opt_out_unsubscribes_the_person() -> None:
    people = people_of([record("Lead", "00Q1", "a@x.io", unsubscribed=True), record("Contact", "0031", "a@x.io"),
                        record("Contact", "0032", "b@x.io", unsubscribed=None)])
    assert people[frozenset({"00Q1", "0031"})].unsubscribed is True
    assert people[frozenset({"0032"})].unsubscribed is False


def test_primary_is_the_newest_contact_then_lead() -> None:
    old, new = record("Contact", "0031", "a@x.io", minutes=1), record("Contact", "0032", "a@x.io", minutes=9)
    lead = record("Lead", "00Q1", "a@x.io", minutes=30)
    (person,) = group_people([old, lead, new])
    assert person.primary == new
    (lead_only,) = group_people([record("Lead", "00Q2", "a@x.io", minutes=1), lead])
    assert lead_only.primary == lead


def reference_people(records: list[IdentityRecord]) -> list[Person]:
    """The grouping as first written (a dict per key, an object per record): what the packed one must equal."""
    parent = list(range(len(records)))

    def find(node: int) -> int:
        while parent[node] != node:
            node = parent[node]
        return node

    first_with: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        keys = [("key", record.external_id), *(("key", target) for target in record.links)]
        for key in keys + ([("email", record.email)] if record.email else []):
            a, b = find(index), find(first_with.setdefault(key, index))
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[IdentityRecord]] = {}
    for index, record in enumerate(records):
        groups.setdefault(find(index), []).append(record)
    return [make_person(tuple(group)) for group in groups.values()]


class Colliding(str):
    """Text whose hash is every other Colliding text's: grouping must still tell them apart by content."""

    def __hash__(self) -> int:
        return 7


def random_records(seed: int, count: int, text: type[str] = str) -> list[IdentityRecord]:
    rng = random.Random(seed)
    found = []
    for n in range(count):
        object_type = rng.choice(["Lead", "Lead", "Contact", "CampaignMember"])
        integration = rng.choice(["crm", "eu"])
        email = rng.choice([None, " N/A ", f"Person{rng.randrange(count // 4)}@Example.com", f"p{n}@x.io"])
        links = {}
        if object_type == "Lead" and rng.random() < 0.3:
            links["converted_contact_id"] = f"003{rng.randrange(count)}"
        if object_type == "CampaignMember":
            links[rng.choice(["lead_id", "contact_id"])] = f"{rng.choice(['00Q', '003'])}{rng.randrange(count)}"
        ids = {"Lead": "00Q", "Contact": "003", "CampaignMember": "00v"}
        made = identity_record(f"sf_{integration}_{object_type}_{ids[object_type]}{rng.randrange(count)}",
                               integration, object_type, email, rng.choice([True, False, None]),
                               T0 + timedelta(seconds=rng.randrange(50)), links)
        found.append(IdentityRecord(text(made.external_id), made.integration_id, made.object_type,
                                    None if made.email is None else text(made.email), made.unsubscribed,
                                    made.modified_at, tuple(text(t) for t in made.links), made.converted))
    unique = {r.external_id: r for r in found}  # one record per external ID, as in the store
    return list(unique.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_packed_grouping_equals_the_reference_on_random_records(seed: int) -> None:
    records = random_records(seed, 4000)
    people = list(group_people(records))
    assert people == reference_people(records)
    assert len(people) < len(records) * 0.9  # links and shared emails did join many records


def test_hash_collisions_never_join_records_with_different_keys() -> None:
    records = random_records(4, 300, text=Colliding)
    assert list(group_people(records)) == reference_people(records)
    assert len(list(group_people(records))) > 50
