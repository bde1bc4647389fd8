"""One person across a project's synced records (pure, no I/O).

Records are the same person when a converted Lead names the Contact it became (ConvertedContactId), when a
CampaignMember names its Lead or Contact, or when they share a normalised email; sameness is transitive
(union-find). A person's id comes from one member's external ID, so it stays put while unrelated records
change; its opt-out is the safest of its members' (unsubscribed if any member opted out).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from salesforce_sync.config.models import IDENTITY_LINKS

IDENTITY_VERSION = 1
"""Bumped whenever the grouping rules change, so every project's people are rebuilt with the new ones."""

#: Which record speaks for a person: a Contact over a Lead over a CampaignMember (then the newest).
PRIMARY_ORDER: dict[str, int] = {"Contact": 0, "Lead": 1, "CampaignMember": 2}


def normalise_email(value: str | None, *, dotless_domains: frozenset[str] = frozenset()) -> str | None:
    """The email as people are matched on it: trimmed and casefolded; None when it is not one address
    (empty, no `@` or more than one, an empty side), so junk like "n/a" never joins strangers. Dots in
    the local part are dropped only for `dotless_domains` (e.g. gmail.com, where they do not matter)."""
    if value is None:
        return None
    email = value.strip().casefold()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in email):
        return None
    if domain in dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def link_properties() -> tuple[str, ...]:
    """Every property an identity reference is stored under (what identity reads of `properties`)."""
    return tuple(dict.fromkeys(name for links in IDENTITY_LINKS.values() for _, name, _ in links))


def identity_record(external_id: str, integration_id: str, object_type: str, email: str | None,
                    unsubscribed: bool | None, modified_at: datetime, properties: dict[str, str | None], *,
                    dotless_domains: frozenset[str] = frozenset()) -> IdentityRecord:
    """A stored record as identity sees it: its email normalised, its references (`properties`, see
    IDENTITY_LINKS) as the external IDs they name; a Lead naming its Contact is a converted Lead."""
    links = tuple(f"sf_{integration_id}_{target}_{properties[name]}"
                  for _, name, target in IDENTITY_LINKS.get(object_type, ()) if properties.get(name))  # type: ignore[call-overload]
    return IdentityRecord(external_id, sys.intern(integration_id), sys.intern(object_type),
                          normalise_email(email, dotless_domains=dotless_domains), unsubscribed, modified_at, links,
                          converted=object_type == "Lead" and bool(links))


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """What identity needs of one live stored record (see identity_record); kept small, a project may hold
    a million of them while it is grouped."""

    external_id: str
    integration_id: str
    object_type: str
    email: str | None
    unsubscribed: bool | None
    modified_at: datetime
    links: tuple[str, ...] = ()
    converted: bool = False

    @property
    def salesforce_id(self) -> str:
        """The Id in the external ID `sf_<integration>_<object>_<Id>` (object types and Ids have no `_`)."""
        return self.external_id.rsplit("_", 1)[1]


@dataclass(frozen=True, slots=True)
class Person:
    """One person: the records that are them, the one that speaks for them, and their merged opt-out."""

    person_id: str
    primary: IdentityRecord
    email: str | None
    unsubscribed: bool
    members: tuple[IdentityRecord, ...]


def person_id(members: Iterable[IdentityRecord]) -> str:
    """`p_` and a hash of the smallest Lead or Contact external ID (CampaignMembers only when there is no
    Lead or Contact: memberships come and go), so the id changes only when the person's own records do."""
    anchor = min((member.object_type == "CampaignMember", member.external_id) for member in members)[1]
    return "p_" + hashlib.blake2b(anchor.encode(), digest_size=12).hexdigest()


def primary_record(members: Iterable[IdentityRecord]) -> IdentityRecord:
    """A Contact over a Lead over a CampaignMember, then the most recently modified, then the smallest key."""
    return min(members, key=lambda m: (PRIMARY_ORDER.get(m.object_type, 3), -m.modified_at.timestamp(),
                                       m.external_id))


def make_person(members: tuple[IdentityRecord, ...]) -> Person:
    primary = primary_record(members)
    emails = sorted((PRIMARY_ORDER.get(m.object_type, 3), -m.modified_at.timestamp(), m.email)
                    for m in members if m.email)
    email = primary.email or (emails[0][2] if emails else None)
    return Person(person_id(members), primary, email, any(m.unsubscribed for m in members), members)


def group_people(records: Iterable[IdentityRecord]) -> Iterator[Person]:
    """The people the records make up, each record in exactly one. A link to a record that is not among
    `records` (out of scope, deleted) still joins the records that name it."""
    parent = array("q")
    members: list[IdentityRecord] = []
    by_key: dict[str, int] = {}  # an external ID -> a record that is or names it
    by_email: dict[str, int] = {}  # a normalised email -> a record that has it

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def join(node: int, key: str, seen: dict[str, int]) -> None:
        other = seen.setdefault(key, node)
        if other != node:
            a, b = find(node), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)

    for index, record in enumerate(records):
        parent.append(index)
        members.append(record)
        join(index, record.external_id, by_key)
        if record.email:
            join(index, record.email, by_email)
        for target in record.links:
            join(index, target, by_key)
    by_email.clear()
    by_key.clear()
    groups: dict[int, list[IdentityRecord]] = {}
    for index, record in enumerate(members):
        groups.setdefault(find(index), []).append(record)
    members.clear()
    for group in groups.values():
        yield make_person(tuple(group))
