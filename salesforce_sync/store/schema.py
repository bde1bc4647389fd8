"""The audience store's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from salesforce_sync.store.models import IntegrationStatus, SyncEvent

SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""Fixed-width UTC text, so SQLite compares timestamps correctly as strings."""

REMOVED_REASONS = ("deleted", "hard_deleted", "out_of_scope")
"""Why a stored row is not live: deleted in Salesforce (IsDeleted), missing from an Id listing (hard
delete, emptied recycle bin, removed CampaignMember), or no longer matching the object's sync rules."""

INTEGRATION_LEVEL = ""
"""object_type stored for integration-wide state rows (kept non-null so it can be part of the key)."""


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them as sortable fixed-width text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[object]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"the audience store only accepts timezone-aware datetimes, got {value!r}")
        value = value.astimezone(UTC)
        return value.strftime(SQLITE_TIMESTAMP_FORMAT) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | str | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            # fromisoformat reads SQLITE_TIMESTAMP_FORMAT exactly, at a tenth of strptime's cost
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")
Key = String().with_variant(String(collation="C"), "postgresql")
"""Byte-order collation for key text: faster index maintenance on PostgreSQL, and prefix ranges on
external_id ("sf_<integration>_") then select exactly the keys that start with the prefix."""
Identifier = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER keys


def _one_of(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


metadata = MetaData()

audience_users = Table(
    "audience_users",
    metadata,
    Column("project", Key, nullable=False),
    Column("external_id", Key, nullable=False, comment="sf_<integrationId>_<objectType>_<salesforceId>"),
    Column("integration_id", Key, nullable=False),
    Column("object_type", Key, nullable=False),
    Column("salesforce_id", String, nullable=False),
    Column("email", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("phone", Text),
    Column("properties", JsonDocument, nullable=False, comment="typed custom properties"),
    Column("unsubscribed", Boolean, comment="NULL when no opt-out field is mapped"),
    Column("deleted", Boolean, nullable=False),
    Column("deleted_at", UtcDateTime, comment="when the store first marked this person deleted; NULL while live"),
    Column("sf_modified_at", UtcDateTime, nullable=False, comment="Salesforce LastModifiedDate"),
    Column("first_synced_at", UtcDateTime, nullable=False),
    Column("last_synced_at", UtcDateTime, nullable=False),
    Column("last_seen_scan", String, comment="id of the last full scan that listed this record"),
    Column("content_hash", BigInteger, comment="hash of the stored content; NULL after the store itself marked the row"),
    Column("removed_reason", String(16), comment="why the row is not live: " + ", ".join(REMOVED_REASONS)),
    # No index on (integration_id, object_type): the key embeds both, so a prefix range on the primary
    # key finds an integration's or object's rows, and every upsert maintains one index instead of two.
    PrimaryKeyConstraint("project", "external_id", name="pk_audience_users"),
    # Free room on each page lets PostgreSQL update rows in place (HOT) without touching the index:
    # most incremental syncs update people rather than add them.
    postgresql_with={"fillfactor": 85},
)

sync_log = Table(
    "sync_log",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("project", String, nullable=False),
    Column("integration_id", String, nullable=False),
    Column("object_type", String),
    Column("event", String(32), nullable=False),
    Column("count", BigInteger),
    Column("duration_seconds", Float),
    Column("window_start", UtcDateTime),
    Column("window_end", UtcDateTime),
    Column("run_id", String),
    Column("message", Text, comment="message or error text, verbatim"),
    Column("details", JsonDocument),
    CheckConstraint(_one_of("event", [event.value for event in SyncEvent]), name="ck_sync_log_event"),
    Index("ix_sync_log_integration_at", "integration_id", "at"),
    Index("ix_sync_log_at", "at"),
)

salesforce_orgs = Table(
    "salesforce_orgs",
    metadata,
    Column("org_id", String(18), primary_key=True, comment="18-character Salesforce organization id"),
    Column("project", String, nullable=False),
    Column("integration_id", String, nullable=False),
    Column("connected_at", UtcDateTime, nullable=False),
    Index("ix_salesforce_orgs_project", "project"),
)

integration_state = Table(
    "integration_state",
    metadata,
    Column("integration_id", String, nullable=False),
    Column("object_type", String, nullable=False, comment="'' for the integration as a whole"),
    Column("status", String(16), nullable=False),
    Column("last_success_at", UtcDateTime),
    Column("last_success_window_end", UtcDateTime),
    Column("last_error", Text),
    Column("last_error_at", UtcDateTime),
    Column("records_imported", BigInteger, nullable=False, server_default=text("0")),
    Column("records_updated", BigInteger, nullable=False, server_default=text("0")),
    Column("records_deleted", BigInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("integration_id", "object_type", name="pk_integration_state"),
    CheckConstraint(
        _one_of("status", [status.value for status in IntegrationStatus]), name="ck_integration_state_status"
    ),
)

object_settings = Table(
    "object_settings",
    metadata,
    Column("integration_id", String, nullable=False),
    Column("object_type", String, nullable=False),
    Column("fingerprint", String(64), comment="hash of the mappings and rules the stored rows were last fully read with"),
    Column("fingerprint_at", UtcDateTime),
    Column("reconciled_at", UtcDateTime, comment="when the last Id reconciliation (hard deletes, scope) finished"),
    Column("known_fields", JsonDocument,
           comment="the object's field names in the org's describe when the fingerprint was recorded (schema_drift)"),
    Column("auto_mappings", JsonDocument,
           comment="mappings of new custom fields added by schema_drift (auto_map_new_fields): field, property, type"),
    Column("formula_refreshed_at", UtcDateTime,
           comment="when the last formula refresh (mapped formula fields and relationship paths re-read) began"),
    PrimaryKeyConstraint("integration_id", "object_type", name="pk_object_settings"),
)
"""Per integration and object: which settings the stored rows reflect, when Ids were last reconciled and when
formula values were last re-read."""

sync_leases = Table(
    "sync_leases",
    metadata,
    Column("integration_id", String, primary_key=True),
    Column("owner", String, nullable=False, comment="who holds it: a Dagster run id or a CLI's own key"),
    Column("holder", Text, nullable=False, comment="the holder as people read it: 'Dagster run ...', 'CLI pid N on host H'"),
    Column("host", String, nullable=False),
    Column("pids", Text, nullable=False, comment="space-separated process ids of the owner's holds; none left: free"),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, comment="free for others after this unless renewed"),
)

change_capture_state = Table(
    "change_capture_state",
    metadata,
    Column("integration_id", String, primary_key=True),
    Column("topic", String, nullable=False),
    Column("replay_id", String, comment="hex of the replay id after the last event applied; NULL: none yet"),
    Column("last_commit_at", UtcDateTime, comment="commit time of the newest event applied"),
    Column("applied_at", UtcDateTime, comment="when the replay id last moved"),
    Column("heard_at", UtcDateTime, comment="when the subscription last answered (events or keepalive)"),
    Column("pending_since", UtcDateTime, comment="commit time of the oldest event read but not yet applied"),
    Column("last_lag_seconds", Float, comment="the last micro-sync's largest event commit -> stored lag"),
    Column("events_applied", BigInteger, nullable=False, server_default=text("0")),
)
"""Per integration: where its change-event subscription resumes (moved only after the events' records are applied)
and how far behind it is."""


people = Table(
    "people",
    metadata,
    Column("project", Key, nullable=False),
    Column("person_id", Key, nullable=False, comment="p_<hash of the smallest Lead or Contact external_id>"),
    Column("primary_external_id", Key, nullable=False, comment="the record that speaks for the person"),
    Column("email", Text, comment="normalised (trimmed, casefolded) email of the primary record or another member"),
    Column("unsubscribed", Boolean, nullable=False, comment="true when any member opted out"),
    Column("member_count", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False, comment="newest Salesforce modification among the members"),
    PrimaryKeyConstraint("project", "person_id", name="pk_people"),
)
"""One person per row: live synced records grouped by sync.identity, rebuilt per project (store/people.py)."""

person_members = Table(
    "person_members",
    metadata,
    Column("project", Key, nullable=False),
    Column("external_id", Key, nullable=False),
    Column("person_id", Key, nullable=False),
    Column("integration_id", Key, nullable=False),
    Column("object_type", Key, nullable=False),
    Column("salesforce_id", String, nullable=False),
    Column("email", Text, comment="the member's normalised email"),
    Column("converted", Boolean, nullable=False, comment="a converted Lead (read-only in Salesforce)"),
    PrimaryKeyConstraint("project", "external_id", name="pk_person_members"),
    Index("ix_person_members_person", "project", "person_id"),
    Index("ix_person_members_email", "project", "email"),
)
"""Which live audience_users record belongs to which person."""

people_builds = Table(
    "people_builds",
    metadata,
    Column("project", Key, primary_key=True),
    Column("source", String, nullable=False, comment="what the people were built from (see runs/people.py)"),
    Column("built_at", UtcDateTime, nullable=False),
    Column("people", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
)
"""The last rebuild of each project's people, so one with nothing new to read is skipped."""
WRITE_BACK_OUTCOMES = ("created", "updated", "unchanged", "skipped", "rejected")
"""What a write-back push did with a source row."""


def _write_back_table(name: str, *columns: Column, comment: str) -> Table:
    """A per-source-row table of the write-back, keyed by integration, Salesforce object and source key."""
    return Table(
        name, metadata,
        Column("integration_id", Key, nullable=False),
        Column("object_type", Key, nullable=False),
        Column("source_key", Key, nullable=False, comment="the person's or company's key in the source"),
        *columns,
        PrimaryKeyConstraint("integration_id", "object_type", "source_key", name=f"pk_{name}"),
        comment=comment,
    )


write_back_links = _write_back_table(
    "write_back_links",
    Column("salesforce_id", String(18), nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
    comment="which Salesforce record a source row is, once matched or created",
)

write_back_snapshots = _write_back_table(
    "write_back_snapshots",
    Column("row_hash", String(32), nullable=False, comment="content hash of the row as last pushed successfully"),
    Column("pushed_at", UtcDateTime, nullable=False),
    comment="what Salesforce last accepted of each source row: the next push sends only rows whose hash differs",
)

write_back_outcomes = _write_back_table(
    "write_back_outcomes",
    Column("outcome", String(16), nullable=False),
    Column("row_hash", String(32), nullable=False, comment="content hash of the row this outcome is for"),
    Column("salesforce_id", String(18)),
    Column("status_code", String(64), comment="Salesforce's statusCode, or ours for what we found before sending"),
    Column("message", Text),
    Column("fields", JsonDocument),
    Column("retryable", Boolean, nullable=False),
    Column("found_before_sending", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("run_id", String),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint(_one_of("outcome", list(WRITE_BACK_OUTCOMES)), name="ck_write_back_outcomes_outcome"),
    comment="the latest push outcome of each source row, with Salesforce's reason for a rejection",
)

write_back_intents = _write_back_table(
    "write_back_intents",
    Column("run_id", String),
    Column("at", UtcDateTime, nullable=False),
    comment="creates sent without an external ID and not yet answered: a rerun matches these before creating",
)

write_back_starts = Table(
    "write_back_starts",
    metadata,
    Column("integration_id", Key, nullable=False),
    Column("object_type", Key, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("integration_id", "object_type", name="pk_write_back_starts"),
    comment="when a write-back was switched on (its first push): activities before it are not sent",
)
