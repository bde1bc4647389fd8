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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np

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
    if not at or not local or not domain or "@" in domain or len(email.split()) != 1:  # inner whitespace
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


class IdentityRecord(NamedTuple):
    """What identity needs of one live stored record (see identity_record); a tuple, as a rebuild makes one
    per record on the way in and one on the way out."""

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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 65_536
"""How many matches or people are unpacked into Python objects at a time."""


class _Texts:
    """Many strings in one UTF-8 buffer with their end offsets: 8 bytes plus the text per string instead
    of a Python object (~50 bytes plus the text), so a million records fit in bounded memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = array("q")

    def add(self, text: str) -> None:
        self.data += text.encode()
        self.ends.append(len(self.data))

    def raw(self, index: int) -> bytes:
        return bytes(self.data[self.ends[index - 1] if index else 0:self.ends[index]])

    def get(self, index: int) -> str:
        return self.data[self.ends[index - 1] if index else 0:self.ends[index]].decode()


class _Keys:
    """Occurrences of one kind of key (an external ID, an email): its hash, the record it is on and where its
    text is, so records sharing a key are found by sorting hashes, each match checked on the text (a hash
    collision never joins strangers)."""

    def __init__(self) -> None:
        self.hashes = array("q")
        self.records = array("i")
        self.texts = array("i")  # >= 0: the text of a record's own external ID / email; < 0: link -1 - n

    def add(self, text: str, record: int, where: int) -> None:
        self.hashes.append(hash(text))
        self.records.append(record)
        self.texts.append(where)

    def matches(self, text_of: Callable[[int], bytes]) -> Iterator[tuple[int, int]]:
        """(record, record) for every occurrence whose key is that of an earlier occurrence; then forgets them."""
        hashes = np.frombuffer(self.hashes, dtype=np.int64) if self.hashes else np.empty(0, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # positions whose hash is the previous one's
        del hashes, ordered
        previous, last, run, first_text, by_text = order[repeats - 1], -2, -1, b"", None
        others = order[repeats]
        del order
        for at in range(0, len(repeats), _CHUNK):
            chunk = zip(repeats[at:at + _CHUNK].tolist(), previous[at:at + _CHUNK].tolist(),
                        others[at:at + _CHUNK].tolist())
            for position, before, other in chunk:
                if position - 1 != last:  # a new run of equal hashes, starting at `before`
                    run, first_text, by_text = before, text_of(self.texts[before]), None
                last = position
                text = text_of(self.texts[other])
                if by_text is None and text == first_text:
                    yield self.records[run], self.records[other]
                    continue
                # a hash collision in this run: from here on its occurrences are matched by text
                by_text = by_text or {first_text: run}
                match = by_text.setdefault(text, other)
                if match != other:
                    yield self.records[match], self.records[other]
        self.hashes, self.records, self.texts = array("q"), array("i"), array("i")


def group_people(records: Iterable[IdentityRecord]) -> Iterator[Person]:
    """The people the records make up, each record in exactly one. A link to a record that is not among
    `records` (out of scope, deleted) still joins the records that name it. Records are kept packed (texts
    in buffers, fields in arrays) while grouped, and unpacked one person at a time."""
    external_ids, emails, links = _Texts(), _Texts(), _Texts()
    link_ends, integrations, objects = array("q"), array("h"), array("b")
    unsubscribed, modified = array("b"), array("q")
    names: dict[str, int] = {}
    keys, addresses = _Keys(), _Keys()
    one_microsecond = timedelta(microseconds=1)
    count = 0
    add_key, add_address = keys.add, addresses.add  # bound once: this loop runs once per record
    for index, record in enumerate(records):
        external_id, email = record.external_id, record.email
        external_ids.add(external_id)
        add_key(external_id, index, index)
        emails.add(email or "")
        if email:
            add_address(email, index, index)
        for target in record.links:
            add_key(target, index, -1 - len(links.ends))
            links.add(target)
        link_ends.append(len(links.ends))
        integrations.append(names.setdefault(record.integration_id, len(names)))
        objects.append(names.setdefault(record.object_type, len(names)))
        unsubscribed.append(-1 if record.unsubscribed is None else record.unsubscribed)
        modified.append((record.modified_at - EPOCH) // one_microsecond)
        count = index + 1

    parent = array("i", range(count))

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def key_text(where: int) -> bytes:
        return external_ids.raw(where) if where >= 0 else links.raw(-1 - where)

    for matches in (keys.matches(key_text), addresses.matches(emails.raw)):
        for one, other in matches:
            a, b = find(one), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)  # a group's root is its first record
    for index in range(count):  # a parent is never after its record, so it is already a root
        parent[index] = parent[parent[index]]
    text_of = {code: name for name, code in names.items()}

    def unpack(index: int) -> IdentityRecord:
        first_link, end = link_ends[index - 1] if index else 0, link_ends[index]
        found = tuple(links.get(n) for n in range(first_link, end)) if end > first_link else ()
        object_type = text_of[objects[index]]
        flag = unsubscribed[index]
        return IdentityRecord(external_ids.get(index), text_of[integrations[index]], object_type,
                              emails.get(index) or None, None if flag < 0 else bool(flag),
                              EPOCH + modified[index] * one_microsecond, found,
                              converted=object_type == "Lead" and bool(found))

    roots = np.frombuffer(parent, dtype=np.int32) if count else np.empty(0, dtype=np.int32)
    order = np.argsort(roots, kind="stable")  # people in the order of their first record, members in theirs
    starts = np.r_[0, np.flatnonzero(np.diff(roots[order])) + 1, count] if count else np.empty(0, dtype=np.int64)
    for at in range(0, len(starts) - 1, _CHUNK):
        bounds = starts[at:at + _CHUNK + 1].tolist()
        members = order[bounds[0]:bounds[-1]].tolist()
        for start, end in zip(bounds, bounds[1:]):
            yield make_person(tuple(unpack(index) for index in members[start - bounds[0]:end - bounds[0]]))
