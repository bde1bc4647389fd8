"""People in the store, on SQLite and PostgreSQL: rebuilt from the live records of one project (links read from
`properties`), replaced atomically, and looked up by email the way write-back matches."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.people import WRITE_BATCH, PeopleCounts, PersonMatch
from salesforce_sync.sync.identity import Person, group_people, identity_record

INTEGRATION = "int1"


@pytest.fixture
def project() -> str:
    """A project of its own: people tables are not emptied between tests."""
    return f"people_{uuid.uuid4().hex[:8]}"


def write(store: AudienceStore, project: str, make_chunk: Callable[..., pd.DataFrame], object_type: str,
          rows: dict[str, tuple[str | None, dict[str, str | None]]], *, integration: str = INTEGRATION,
          modified: str = "2024-05-01T10:00:00Z", unsubscribed: bool | None = False, deleted: bool = False) -> None:
    """Rows {salesforce id: (email, properties)} of one object."""
    ids = list(rows)
    chunk = make_chunk(ids, object_type=object_type, integration_id=integration, modified=modified, deleted=deleted,
                       email=[rows[i][0] for i in ids], properties=[rows[i][1] for i in ids],
                       unsubscribed=[unsubscribed] * len(ids))
    store.upsert_users(project, integration, chunk)


def seed(store: AudienceStore, project: str, make_chunk: Callable[..., pd.DataFrame]) -> None:
    write(store, project, make_chunk, "Lead", {
        "00Q1": ("Old.Address@Example.com", {"converted_contact_id": "0031", "is_converted": True}),
        "00Q2": (" Grace@Example.com", {"converted_contact_id": None, "is_converted": False}),
        "00Q3": (None, {"converted_contact_id": None, "is_converted": False}),
    }, modified="2024-05-02T10:00:00Z")
    write(store, project, make_chunk, "Contact", {"0031": ("ada@example.com", {}),
                                                  "0032": ("grace@example.com", {})})
    write(store, project, make_chunk, "Contact", {"0033": ("LINUS@example.com", {})}, unsubscribed=True)
    write(store, project, make_chunk, "CampaignMember", {
        "00v1": (None, {"lead_id": "00Q3", "contact_id": None}),
        "00v2": ("linus@example.com", {"lead_id": None, "contact_id": "0033"}),
        "00v3": ("solo@example.com", {"lead_id": "00Q9", "contact_id": None}),  # its Lead is not synced
    })
    write(store, project, make_chunk, "Lead", {"00Q8": ("ada@example.com", {"converted_contact_id": None})},
          deleted=True)
    # another integration's Contact with Grace's address is the same person; another project's is not
    write(store, project, make_chunk, "Contact", {"0031": ("GRACE@example.com", {})}, integration="int2")
    write(store, project + "_other", make_chunk, "Contact", {"0039": ("ada@example.com", {})})


def test_rebuild_groups_live_records_and_write_back_finds_them_by_email(
        store: AudienceStore, project: str, make_chunk: Callable[..., pd.DataFrame]) -> None:
    seed(store, project, make_chunk)

    counts = rebuild_people(store, project)

    # 10 live records: Ada (lead + contact), Grace (lead, contact, int2 contact), 00Q3 + its member,
    # Linus (contact + member), the solo member; the deleted Lead is no one
    assert (counts.people, counts.records, counts.merged) == (5, 10, 5)
    assert store.people.counts(project) == counts
    found = store.people.by_email(project, ["ADA@example.com ", "old.address@example.com", "grace@example.com",
                                            "linus@example.com", "solo@example.com", "nobody@example.com", "n/a"])
    assert set(found) == {"ADA@example.com ", "old.address@example.com", "grace@example.com", "linus@example.com",
                          "solo@example.com"}
    ada = found["ADA@example.com "]
    # the converted Lead is read-only in Salesforce: only its Contact is offered
    assert ada == found["old.address@example.com"]
    assert (ada.email, ada.unsubscribed, ada.contacts, ada.leads) == ("ada@example.com", False, {"int1": ("0031",)}, {})
    grace = found["grace@example.com"]
    assert grace.contacts == {"int1": ("0032",), "int2": ("0031",)} and grace.leads == {"int1": ("00Q2",)}
    assert grace.salesforce_records("int1") == (("Contact", "0032"), ("Lead", "00Q2"))
    assert found["linus@example.com"].unsubscribed is True
    assert found["solo@example.com"] == PersonMatch(found["solo@example.com"].person_id, "solo@example.com", False)

    members = store.people.members(project, grace.person_id)
    assert [(m.external_id, m.primary) for m in members][0][1] is True
    assert {m.external_id for m in members} == {"sf_int1_Lead_00Q2", "sf_int1_Contact_0032", "sf_int2_Contact_0031"}
    lead_three = store.people.members(project, store.people.person_id_of(project, "solo@example.com"))
    assert [m.external_id for m in lead_three] == ["sf_int1_CampaignMember_00v3"]
    assert store.people.by_email(project + "_other", ["grace@example.com"]) == {}


def test_a_rebuild_follows_changes_and_keeps_unrelated_ids(
        store: AudienceStore, project: str, make_chunk: Callable[..., pd.DataFrame]) -> None:
    seed(store, project, make_chunk)
    assert rebuild_people(store, project).rebuilt
    before = store.people.by_email(project, ["ada@example.com", "grace@example.com", "linus@example.com"])
    # nothing synced since: the build is kept (unless forced)
    assert rebuild_people(store, project) == PeopleCounts(5, 10, rebuilt=False)
    assert rebuild_people(store, project, force=True) == PeopleCounts(5, 10)

    # Grace's Lead is deleted; a new Lead with Linus's address (other case) opts out
    write(store, project, make_chunk, "Lead", {"00Q2": ("grace@example.com", {"converted_contact_id": None})},
          modified="2024-06-01T10:00:00Z", deleted=True)
    write(store, project, make_chunk, "Lead", {"00Q7": ("Linus@Example.com", {"converted_contact_id": None})},
          modified="2024-06-01T10:00:00Z")
    counts = rebuild_people(store, project)

    after = store.people.by_email(project, ["ada@example.com", "grace@example.com", "linus@example.com"])
    assert counts == PeopleCounts(5, 10, rebuilt=True)
    assert {k: m.person_id for k, m in after.items()} == {k: m.person_id for k, m in before.items()}
    assert after["grace@example.com"].leads == {} and after["linus@example.com"].leads == {"int1": ("00Q7",)}


def test_a_failed_rebuild_leaves_the_previous_people(
        store: AudienceStore, project: str, make_chunk: Callable[..., pd.DataFrame]) -> None:
    seed(store, project, make_chunk)
    rebuild_people(store, project)
    before = store.people.by_email(project, ["ada@example.com"])

    def many_then_broken() -> Iterator[Person]:
        for n in range(WRITE_BATCH + 10):  # a whole batch is written before the failure
            record = identity_record(f"sf_x_Lead_{n}", "x", "Lead", f"p{n}@example.com", False,
                                     pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime(), {})
            yield from group_people([record])
        raise RuntimeError("killed mid-rebuild")

    with pytest.raises(RuntimeError, match="killed mid-rebuild"):
        store.people.replace(project, many_then_broken(), source="broken")

    assert store.people.counts(project) == PeopleCounts(5, 10)
    assert store.people.by_email(project, ["ada@example.com"]) == before
