"""Org registry, sync log and integration state on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesforce_sync.store import (
    AudienceStore,
    IntegrationState,
    IntegrationStatus,
    OrgAlreadyRegisteredError,
    StoreInputError,
    SyncEvent,
    UpsertCounts,
)

ORG_15 = "00D5g000004EmuL"
ORG_18 = "00D5g000004EmuLEAS"
OTHER_ORG = "00D000000000001EAA"


def test_an_org_feeds_one_project_and_may_reconnect(store: AudienceStore) -> None:
    first = store.register_org(ORG_15, "acme", "int1")

    assert first.org_id == ORG_18
    assert (first.project, first.integration_id) == ("acme", "int1")

    with pytest.raises(OrgAlreadyRegisteredError) as refused:
        store.register_org(ORG_18, "globex", "int9")
    message = str(refused.value)
    assert ORG_18 in message and "'acme'" in message and "'int1'" in message and "'globex'" in message
    assert store.org(ORG_18) == first  # the refused claim changed nothing

    reconnected = store.register_org(ORG_18, "acme", "int2")
    assert reconnected.integration_id == "int2"
    assert reconnected.connected_at >= first.connected_at

    store.register_org(OTHER_ORG, "acme", "int3")  # a project may hold several orgs
    assert [org.org_id for org in store.orgs(project="acme")] == [OTHER_ORG, ORG_18]
    assert store.orgs(project="globex") == []
    assert [org.org_id for org in store.orgs(integration_id="int3")] == [OTHER_ORG]

    assert store.unregister_org(ORG_15) is True
    assert store.org(ORG_18) is None
    assert store.register_org(ORG_18, "globex", "int9").project == "globex"
    assert store.unregister_org(ORG_15) is True
    assert store.unregister_org(ORG_15) is False


@pytest.mark.parametrize(
    "bad_org_id", ["", "00D5g000004Emu", "001000000000001AAA", "00D5g000004EmuLXXX", "00D5g000004EmuL!x"]
)
def test_malformed_org_ids_are_refused(store: AudienceStore, bad_org_id: str) -> None:
    with pytest.raises(StoreInputError, match="Salesforce org id"):
        store.register_org(bad_org_id, "acme", "int1")


def test_sync_log_keeps_error_text_verbatim(store: AudienceStore) -> None:
    error_text = (
        "SalesforceMalformedRequest: Malformed request \"q=SELECT Id FROM Lead WHERE Name = 'O'Brien'\"\n"
        'Traceback (most recent call last):\n\tFile "sync.py", line 3\r\n'
        "backslash \\ and \\N and NUL-free unicode: Zoë 北京 🚀 — done"
    )
    window_start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    started = store.log_event(
        "acme",
        "int1",
        SyncEvent.SYNC_STARTED,
        object_type="Lead",
        run_id="run-1",
        window_start=window_start,
        window_end=window_start + timedelta(hours=1),
        at=datetime(2024, 5, 1, 11, tzinfo=UTC),
    )
    failed = store.log_event(
        "acme",
        "int1",
        "sync_failed",
        object_type="Lead",
        run_id="run-1",
        duration_seconds=12.5,
        message=error_text,
        details={"attempt": 2, "quota": {"used": 10, "max": 15000}, "note": "Zoë"},
        at=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )
    store.log_event("acme", "int2", SyncEvent.RECORDS_IMPORTED, count=42, at=datetime(2024, 5, 1, 13, tzinfo=UTC))

    entries = store.sync_log()
    assert [entry.id for entry in entries[1:]] == [failed, started]  # newest first
    failure = entries[1]
    assert failure.message == error_text
    assert failure.event is SyncEvent.SYNC_FAILED
    assert failure.details == {"attempt": 2, "quota": {"used": 10, "max": 15000}, "note": "Zoë"}
    assert failure.duration_seconds == 12.5
    assert failure.at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert entries[2].window_start == window_start
    assert entries[2].window_end == window_start + timedelta(hours=1)
    assert entries[0].count == 42 and entries[0].object_type is None and entries[0].message is None

    assert [entry.id for entry in store.sync_log(integration_id="int1")] == [failed, started]
    assert [entry.id for entry in store.sync_log(event=SyncEvent.SYNC_STARTED)] == [started]
    assert [entry.id for entry in store.sync_log(since=datetime(2024, 5, 1, 12, tzinfo=UTC))][1:] == [failed]
    assert len(store.sync_log(limit=1)) == 1
    assert store.sync_log(project="other") == []


def test_sync_log_refuses_unknown_events_and_bad_counts(store: AudienceStore) -> None:
    with pytest.raises(
        StoreInputError, match=r"integration 'int1': sync log event 'sync_exploded' is not one of: sync_started"
    ):
        store.log_event("acme", "int1", "sync_exploded")
    with pytest.raises(StoreInputError, match=r"count must be a non-negative integer, got -1"):
        store.log_event("acme", "int1", SyncEvent.RECORDS_UPDATED, count=-1)
    with pytest.raises(StoreInputError, match=r"window_start must be a timezone-aware datetime"):
        store.log_event("acme", "int1", SyncEvent.SYNC_STARTED, window_start=datetime(2024, 5, 1))
    assert store.sync_log() == []


def test_integration_state_round_trip(store: AudienceStore) -> None:
    assert store.get_state("int1") is None
    state = IntegrationState(
        integration_id="int1",
        object_type="Lead",
        status=IntegrationStatus.INCOMPLETE,
        last_success_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
        last_success_window_end=datetime(2024, 5, 1, 9, tzinfo=UTC),
        last_error='previous failure:\n"quoted" 🚀',
        last_error_at=datetime(2024, 4, 30, tzinfo=UTC),
        records_imported=5,
        records_updated=6,
        records_deleted=7,
    )

    store.set_state(state)
    store.set_status("int1", None, "Active")

    assert store.get_state("int1", "Lead") == state
    assert store.get_state("int1").status is IntegrationStatus.ACTIVE
    assert store.get_state("int1").object_type is None
    assert [(s.object_type, s.status) for s in store.states("int1")] == [
        (None, IntegrationStatus.ACTIVE),
        ("Lead", IntegrationStatus.INCOMPLETE),
    ]
    with pytest.raises(StoreInputError, match=r"status 'Paused' is not one of: Active, Error, Incomplete, Inactive"):
        store.set_status("int1", None, "Paused")


def test_success_and_failure_update_state(store: AudienceStore) -> None:
    may_1 = datetime(2024, 5, 1, tzinfo=UTC)
    store.record_success("int1", "Lead", window_end=may_1, counts=UpsertCounts(imported=10, deleted=1))
    store.record_failure("int1", "Lead", error="INVALID_SESSION_ID: Session expired or invalid")

    failed = store.get_state("int1", "Lead")
    assert failed.status is IntegrationStatus.ERROR
    assert failed.last_error == "INVALID_SESSION_ID: Session expired or invalid"
    assert failed.last_error_at is not None
    assert failed.last_success_window_end == may_1

    # A later success adds to the totals; an older window (a backfill) never moves the watermark back.
    store.record_success(
        "int1", "Lead", window_end=may_1 + timedelta(hours=2), counts=UpsertCounts(imported=1, updated=3)
    )
    store.record_success("int1", "Lead", window_end=may_1 - timedelta(days=30), counts=UpsertCounts(updated=1))
    store.record_success("int1", "Lead", window_end=None, counts=UpsertCounts())

    state = store.get_state("int1", "Lead")
    assert state.status is IntegrationStatus.ACTIVE
    assert state.last_success_window_end == may_1 + timedelta(hours=2)
    assert (state.records_imported, state.records_updated, state.records_deleted) == (11, 4, 1)
    assert state.last_error == "INVALID_SESSION_ID: Session expired or invalid"  # kept for the record
    assert store.get_state("int1") is None  # object-level state does not create integration-level state
