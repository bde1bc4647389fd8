"""All SQL of people (identity): the live records identity reads, the `people` and `person_members` tables
rebuilt per project in one transaction (readers see the old people or the new, never half), and the
lookups write-back matches against."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Table,
    delete,
    false,
    func,
    select,
)

from salesforce_sync.store.postgres_upsert import _COPY_NULL, _copy, _copy_texts
from salesforce_sync.store.schema import (
    SQLITE_TIMESTAMP_FORMAT,
    UtcDateTime,
    audience_users,
    people,
    people_builds,
    person_members,
)
from salesforce_sync.sync.identity import IdentityRecord, Person, normalise_email

READ_BATCH = 10_000
WRITE_BATCH = 5_000


class StoredRecord(NamedTuple):
    """A live audience_users row as identity reads it; `links` are the named properties' values (text). A
    tuple: a rebuild makes one per record."""

    external_id: str
    integration_id: str
    object_type: str
    email: str | None
    unsubscribed: bool | None
    modified_at: datetime
    links: dict[str, str | None]


@dataclass(frozen=True)
class PersonMatch:
    """The person an email belongs to, with their Salesforce records per integration: Contacts, and the Leads
    not converted (a converted Lead is read-only in Salesforce)."""

    person_id: str
    email: str | None
    unsubscribed: bool
    contacts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    leads: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def salesforce_records(self, integration_id: str) -> tuple[tuple[str, str], ...]:
        """(object type, Salesforce Id) in one integration's org, Contacts first: what write-back updates."""
        return (tuple(("Contact", i) for i in self.contacts.get(integration_id, ()))
                + tuple(("Lead", i) for i in self.leads.get(integration_id, ())))


@dataclass(frozen=True)
class PersonMember:
    person_id: str
    external_id: str
    integration_id: str
    object_type: str
    salesforce_id: str
    email: str | None
    converted: bool
    primary: bool


@dataclass(frozen=True)
class PeopleCounts:
    people: int
    records: int
    #: False when the last build's source was unchanged and the people were kept as they were.
    rebuilt: bool = True

    @property
    def merged(self) -> int:
        """Records that joined another record's person."""
        return self.records - self.people


class PeopleStore:
    """People of the audience store, on SQLite and PostgreSQL."""

    def __init__(self, engine: Engine, reading: Callable[[], Connection]) -> None:
        self._engine = engine
        self._reading = reading

    def records_stamp(self, project: str, object_types: Sequence[str]) -> str:
        """How many records of `object_types` the project has and when the newest write to them happened: every
        upsert, deletion and scope change of a record moves it, so equal stamps mean nothing identity reads has
        changed."""
        users = audience_users.c
        query = (select(func.count(), func.max(users.last_synced_at))
                 .where(users.project == project, users.object_type.in_(object_types)))
        with self._reading() as connection:
            count, newest = connection.execute(query).one()
        return f"{count}:{newest}"

    def last_build(self, project: str) -> tuple[str, PeopleCounts] | None:
        """The source and counts of the project's last people build, if any."""
        builds = people_builds.c
        query = select(builds.source, builds.people, builds.records).where(builds.project == project)
        with self._reading() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else (row.source, PeopleCounts(row.people, row.records, rebuilt=False))

    def live_records(self, project: str, object_types: Sequence[str],
                     link_properties: Sequence[str]) -> Iterator[StoredRecord]:
        """The project's live records of `object_types` ordered by external_id, streamed in batches (bounded
        memory), with the text of each named property (identity references)."""
        users = audience_users.c
        links = [users.properties[name].as_string().label(name) for name in link_properties]
        query = (select(users.external_id, users.integration_id, users.object_type, users.email, users.unsubscribed,
                        users.sf_modified_at, *links)
                 .where(users.project == project, users.deleted == false(), users.object_type.in_(object_types))
                 .order_by(users.external_id))
        with self._reading() as connection:
            result = connection.execution_options(yield_per=READ_BATCH).execute(query)
            for row in result:
                yield StoredRecord(*row[:6], dict(zip(link_properties, row[6:])))

    def replace(self, project: str, everyone: Iterable[Person], *, source: str) -> PeopleCounts:
        """Replace the project's people with `everyone`, in one transaction, written in batches, recording
        `source` (what they were built from). The first batch is taken before the transaction begins, so a
        lazy grouping does its work outside it."""
        people_count = records = 0
        batch = iter(everyone)
        chunk = list(islice(batch, WRITE_BATCH))
        with self._engine.begin() as connection:
            connection.execute(delete(person_members).where(person_members.c.project == project))
            connection.execute(delete(people).where(people.c.project == project))
            while chunk:
                _insert_rows(connection, people, [_person_row(project, person) for person in chunk])
                members = [_member_row(project, person.person_id, member) for person in chunk
                           for member in person.members]
                _insert_rows(connection, person_members, members)
                people_count, records = people_count + len(chunk), records + len(members)
                chunk = list(islice(batch, WRITE_BATCH))
            connection.execute(delete(people_builds).where(people_builds.c.project == project))
            connection.execute(people_builds.insert().values(project=project, source=source, built_at=datetime.now(UTC),
                                                             people=people_count, records=records))
        return PeopleCounts(people_count, records)

    def counts(self, project: str) -> PeopleCounts:
        with self._reading() as connection:
            found = connection.execute(select(func.count()).where(people.c.project == project)).scalar_one()
            records = connection.execute(
                select(func.count()).where(person_members.c.project == project)).scalar_one()
        return PeopleCounts(found, records)

    def by_email(self, project: str, emails: Iterable[str]) -> dict[str, PersonMatch]:
        """For each email that is a person's (any member's, normalised), that person and their Salesforce
        records; emails matching no one are left out. Keys are the emails as given."""
        wanted: dict[str, list[str]] = {}
        for email in emails:
            normal = normalise_email(email)
            if normal is not None:
                wanted.setdefault(normal, []).append(email)
        found: dict[str, PersonMatch] = {}
        members = person_members.c
        normals = list(wanted)
        with self._reading() as connection:
            for start in range(0, len(normals), 500):
                part = normals[start:start + 500]
                owners = dict(connection.execute(
                    select(members.email, members.person_id).distinct()
                    .where(members.project == project, members.email.in_(part))).all())
                matches = self._matches(connection, project, set(owners.values()))
                for normal, person_id in owners.items():
                    for email in wanted[normal]:
                        found[email] = matches[person_id]
        return found

    def person_id_of(self, project: str, email: str) -> str | None:
        match = self.by_email(project, [email]).get(email)
        return None if match is None else match.person_id

    def members(self, project: str, person_id: str) -> list[PersonMember]:
        """A person's records, the primary first, then by external_id."""
        members = person_members.c
        query = (select(members.person_id, members.external_id, members.integration_id, members.object_type,
                        members.salesforce_id, members.email, members.converted,
                        (members.external_id == people.c.primary_external_id).label("primary"))
                 .join(people, (people.c.project == members.project) & (people.c.person_id == members.person_id))
                 .where(members.project == project, members.person_id == person_id)
                 .order_by((members.external_id == people.c.primary_external_id).desc(), members.external_id))
        with self._reading() as connection:
            return [PersonMember(*row[:6], bool(row[6]), bool(row[7])) for row in connection.execute(query)]

    def _matches(self, connection: Connection, project: str, person_ids: set[str]) -> dict[str, PersonMatch]:
        if not person_ids:
            return {}
        members = person_members.c
        records = (members.project == people.c.project) & (members.person_id == people.c.person_id) & \
            members.object_type.in_(("Contact", "Lead"))
        rows = connection.execute(
            select(people.c.person_id, people.c.email, people.c.unsubscribed, members.integration_id,
                   members.object_type, members.salesforce_id, members.converted)
            .outerjoin(person_members, records)
            .where(people.c.project == project, people.c.person_id.in_(person_ids))
            .order_by(people.c.person_id, members.external_id)).all()
        found: dict[str, PersonMatch] = {}
        for person_id, email, unsubscribed, integration_id, object_type, salesforce_id, converted in rows:
            match = found.setdefault(person_id, PersonMatch(person_id, email, bool(unsubscribed)))
            if object_type is None or (object_type == "Lead" and converted):
                continue  # only CampaignMembers, or a read-only converted Lead
            ids = match.contacts if object_type == "Contact" else match.leads
            ids[integration_id] = ids.get(integration_id, ()) + (salesforce_id,)
        return found


def _person_row(project: str, person: Person) -> tuple[object, ...]:
    """A `people` row, its columns in the table's order."""
    return (project, person.person_id, person.primary.external_id, person.email, person.unsubscribed,
            len(person.members), max(member.modified_at for member in person.members))


def _member_row(project: str, person_id: str, member: IdentityRecord) -> tuple[object, ...]:
    """A `person_members` row, its columns in the table's order."""
    return (project, member.external_id, person_id, member.integration_id, member.object_type,
            member.salesforce_id, member.email, member.converted)


def _insert_rows(connection: Connection, table: Table, rows: list[tuple[object, ...]]) -> None:
    """Insert rows (every column, in the table's order) at the driver's speed: COPY on PostgreSQL, executemany
    on SQLite; a rebuild writes a row per person and per record, too many to bind one by one through Core."""
    if not rows:
        return
    columns = [column.name for column in table.columns]
    if connection.dialect.name == "postgresql":
        texts = [_copy_texts([None if value is None else str(value) for value in values])
                 if isinstance(column.type, (String, Integer)) else
                 [_COPY_NULL if value is None else _copy_value(value) for value in values]
                 for column, values in zip(table.columns, zip(*rows))]
        _copy(connection, f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", texts)
        return
    timestamps = [n for n, column in enumerate(table.columns) if isinstance(column.type, UtcDateTime)]
    if timestamps:
        rows = [tuple(value.astimezone(UTC).strftime(SQLITE_TIMESTAMP_FORMAT) if n in timestamps else value
                      for n, value in enumerate(row)) for row in rows]
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' * len(columns))})", rows)


def _copy_value(value: object) -> str:
    """A boolean or timestamp as COPY's text format writes it."""
    if isinstance(value, bool):
        return "t" if value else "f"
    assert isinstance(value, datetime)
    return value.isoformat()
