"""upsert_users on SQLite and PostgreSQL: counting, newest-wins, idempotent reruns, deletes, atomic chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from salesforce_sync.store import AudienceStore, StoreInputError, UpsertCounts, WindowTally

ChunkFactory = Callable[..., pd.DataFrame]
INTEGRATION = "int1"  # the chunk factory's default
PROJECT = "proj"

MAY_1 = "2024-05-01T10:00:00Z"
MAY_2 = "2024-05-02T10:00:00Z"
MAY_3 = "2024-05-03T10:00:00Z"


def stored(store: AudienceStore, project: str = PROJECT) -> pd.DataFrame:
    return store.users(project).set_index("salesforce_id")


def test_new_records_are_imported_and_rerun_is_skipped(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    before = datetime.now(UTC)
    counts = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C"]))
    after = datetime.now(UTC)

    assert counts == UpsertCounts(imported=3)
    users = stored(store)
    assert list(users.index) == ["A", "B", "C"]
    assert users.loc["A", "external_id"] == "sf_int1_Lead_A"
    assert users.loc["A", "integration_id"] == INTEGRATION
    assert users.loc["A", "object_type"] == "Lead"
    assert users.loc["A", "email"] == "a@example.com"
    assert users.loc["A", "sf_modified_at"] == pd.Timestamp(MAY_1)
    assert not users["deleted"].any()
    assert users["deleted_at"].isna().all()
    assert ((users["first_synced_at"] >= before) & (users["first_synced_at"] <= after)).all()
    assert (users["last_synced_at"] == users["first_synced_at"]).all()

    assert store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C"])) == UpsertCounts(skipped=3)
    pd.testing.assert_frame_equal(stored(store), users)


def test_rerunning_a_sequence_of_chunks_changes_nothing(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    chunks = [
        make_chunk(["A", "B"], modified=MAY_1),
        make_chunk(["B", "C"], modified=MAY_2, first_name="Grace"),
        make_chunk(["A", "D"], modified=MAY_3, deleted=[True, False]),
    ]
    first_run = [store.upsert_users(PROJECT, INTEGRATION, chunk) for chunk in chunks]
    assert first_run == [
        UpsertCounts(imported=2),
        UpsertCounts(imported=1, updated=1),
        UpsertCounts(imported=1, deleted=1),
    ]
    state = stored(store)

    rerun = [store.upsert_users(PROJECT, INTEGRATION, chunk) for chunk in chunks]

    assert rerun == [UpsertCounts(skipped=2), UpsertCounts(skipped=2), UpsertCounts(skipped=2)]
    pd.testing.assert_frame_equal(stored(store), state)


def test_older_versions_never_apply_and_equal_versions_only_with_other_content(
        store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B"], modified=MAY_2, first_name="Stored"))
    first_sync = stored(store)

    counts = store.upsert_users(
        PROJECT,
        INTEGRATION,
        make_chunk(["A", "B"], modified=[MAY_1, MAY_2], first_name=["Incoming", "Stored"]),
    )

    assert counts == UpsertCounts(skipped=2)  # older (A) and equal with the same content (B) never overwrite
    pd.testing.assert_frame_equal(stored(store), first_sync)

    # The same version with other content (a new mapping, a parent's new name) is applied; an older one is not.
    counts = store.upsert_users(
        PROJECT, INTEGRATION, make_chunk(["A", "B"], modified=[MAY_1, MAY_2], first_name="Renamed parent"))
    assert counts == UpsertCounts(updated=1, skipped=1)
    assert stored(store)["first_name"].to_dict() == {"A": "Stored", "B": "Renamed parent"}
    assert store.upsert_users(PROJECT, INTEGRATION, make_chunk(["B"], modified=MAY_2, first_name="Renamed parent")) \
        == UpsertCounts(skipped=1)
    first_sync = stored(store)

    counts = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified=MAY_3, first_name="Newer"))
    users = stored(store)
    assert counts == UpsertCounts(updated=1)
    assert users.loc["A", "first_name"] == "Newer"
    assert users.loc["A", "sf_modified_at"] == pd.Timestamp(MAY_3)
    assert users.loc["A", "first_synced_at"] == first_sync.loc["A", "first_synced_at"]
    assert users.loc["A", "last_synced_at"] > first_sync.loc["A", "last_synced_at"]
    assert users.loc["B", "last_synced_at"] == first_sync.loc["B", "last_synced_at"]


def test_sub_second_differences_decide_which_version_wins(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified="2024-05-01T10:00:00.123Z", first_name="Old"))

    older = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified="2024-05-01T10:00:00.122Z"))
    newer = store.upsert_users(
        PROJECT, INTEGRATION, make_chunk(["A"], modified="2024-05-01T12:00:00.124+02:00", first_name="New")
    )

    assert (older, newer) == (UpsertCounts(skipped=1), UpsertCounts(updated=1))
    assert stored(store).loc["A", "first_name"] == "New"
    assert stored(store).loc["A", "sf_modified_at"] == pd.Timestamp("2024-05-01T10:00:00.124Z")


def test_deletes_are_marked_never_dropped(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B"], modified=MAY_1))

    arrived_deleted = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["C"], modified=MAY_1, deleted=True))
    newly_deleted = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified=MAY_2, deleted=True))
    deleted_at = stored(store).loc["A", "deleted_at"]
    still_deleted = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified=MAY_3, deleted=True))

    assert arrived_deleted == UpsertCounts(deleted=1)
    assert newly_deleted == UpsertCounts(deleted=1)
    assert still_deleted == UpsertCounts(updated=1)  # already deleted: a newer deleted version is an update
    users = stored(store)
    assert list(users.index) == ["A", "B", "C"]
    assert users["deleted"].to_dict() == {"A": True, "B": False, "C": True}
    assert users.loc["A", "deleted_at"] == deleted_at  # first deletion time is kept
    assert pd.isna(users.loc["B", "deleted_at"])
    assert store.user_counts(PROJECT)[["users", "live", "deleted"]].to_dict("records") == [
        {"users": 3, "live": 1, "deleted": 2}
    ]

    undeleted = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified="2024-05-04T00:00:00Z"))
    assert undeleted == UpsertCounts(updated=1)
    assert not stored(store).loc["A", "deleted"]
    assert pd.isna(stored(store).loc["A", "deleted_at"])


def test_duplicate_keys_in_one_chunk_keep_the_newest_version(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(
        ["A", "A", "B", "A"],
        modified=[MAY_2, MAY_3, MAY_1, MAY_1],
        first_name=["middle", "newest", "only", "oldest"],
    )

    counts = store.upsert_users(PROJECT, INTEGRATION, chunk)

    assert counts == UpsertCounts(imported=2, duplicates=2)
    users = stored(store)
    assert users.loc["A", "first_name"] == "newest"
    assert users.loc["A", "sf_modified_at"] == pd.Timestamp(MAY_3)
    assert users.loc["B", "first_name"] == "only"


def test_mixed_chunk_counts_every_key_once(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C", "D"], modified=MAY_2))

    counts = store.upsert_users(
        PROJECT,
        INTEGRATION,
        make_chunk(
            ["A", "B", "C", "D", "E", "F"],
            modified=[MAY_3, MAY_3, MAY_1, MAY_2, MAY_1, MAY_1],
            deleted=[False, True, True, False, False, True],
        ),
    )

    assert counts == UpsertCounts(imported=1, updated=1, deleted=2, skipped=2)
    assert counts.changed == 4


def test_properties_and_text_round_trip_verbatim(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    properties = {
        "Company": 'Zoë\'s "Café" 北京 🚀',
        "Notes": "line one\nline two\ttabbed \\ backslash \\N not null\r\n",
        "Tags": ["b2b", "eu", ["nested", 1]],
        "Employees": 120,
        "BigNumber": 2**62 + 1,
        "Revenue": 950000.25,
        "Ratio": 0.1,
        "Active": True,
        "Missing": None,
        "Nested": {"a": {"b": [1, 2.5, "x"]}},
        "SignedUp": "2024-05-01",
        "LastSeen": "2024-05-01T10:00:00.000+0000",
    }
    converted = {
        "Born": date(1815, 12, 10),
        "Seen": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        "Price": Decimal("19.99"),
        "Count": Decimal(3),
    }
    chunk = make_chunk(
        ["A", "B"],
        properties=[properties, converted],
        email=["tab\there@example.com", ""],
        first_name=["Zoë 🚀", 'quote " and comma , here'],
        last_name=["back\\slash", "new\nline"],
        phone=["+1 (555) 0100", None],
        unsubscribed=[True, None],
    )

    store.upsert_users(PROJECT, INTEGRATION, chunk)

    users = stored(store)
    assert users.loc["A", "properties"] == properties
    assert users.loc["B", "properties"] == {
        "Born": "1815-12-10",
        "Seen": "2024-05-01T10:00:00+00:00",
        "Price": 19.99,
        "Count": 3,
    }
    assert users.loc["A", "email"] == "tab\there@example.com"
    assert pd.isna(users.loc["B", "email"])  # Salesforce has no empty strings: "" is stored as NULL
    assert users.loc["A", "first_name"] == "Zoë 🚀"
    assert users.loc["B", "first_name"] == 'quote " and comma , here'
    assert users.loc["A", "last_name"] == "back\\slash"
    assert users.loc["B", "last_name"] == "new\nline"
    assert users.loc["A", "phone"] == "+1 (555) 0100"
    assert pd.isna(users.loc["B", "phone"])
    assert users.loc["A", "unsubscribed"]
    assert pd.isna(users.loc["B", "unsubscribed"])


def test_text_round_trips_verbatim_wherever_nulls_and_escapes_fall(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    """Every text column is escaped (or not) a whole column at a time: nulls, literal backslash-N, line breaks and
    tabs at the start, middle and end of a column, next to plain and non-ASCII values, all come back as sent."""
    names = [None, "\\N", "a\\", "\tlead", "end\r\n", "plain", "Zoë 北京", None, "x\ny\\z\t", "\\"]
    ids = [f"R{number}" for number in range(len(names))]
    chunk = make_chunk(ids, first_name=names, last_name=list(reversed(names)), phone=[None] * len(names),
                       email=["\\"] + [None] * (len(names) - 1),
                       properties=[{"note": name, "tab": "\t"} for name in names])

    store.upsert_users(PROJECT, INTEGRATION, chunk)

    users = stored(store).loc[ids]
    assert [None if pd.isna(value) else value for value in users["first_name"]] == names
    assert [None if pd.isna(value) else value for value in users["last_name"]] == list(reversed(names))
    assert users["phone"].isna().all()
    assert [None if pd.isna(value) else value for value in users["email"]] == ["\\"] + [None] * (len(names) - 1)
    assert users["properties"].tolist() == [{"note": name, "tab": "\t"} for name in names]


def test_a_chunk_failing_mid_way_leaves_the_store_unchanged(
    store: AudienceStore, store_url: str, make_chunk: ChunkFactory
) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B"], modified=MAY_1))
    before = stored(store)
    # A row the database itself refuses, after earlier rows of the same statement were written.
    failing = make_chunk(
        ["A", "B", "C", "D"], modified=MAY_2, email=["a2@x.com", "b2@x.com", "c@x.com", "boom@example.com"]
    )

    with refuse_email_in_database(store_url, "boom@example.com"):
        with pytest.raises(DBAPIError, match="boom"):
            store.upsert_users(PROJECT, INTEGRATION, failing)
        pd.testing.assert_frame_equal(stored(store), before)

    assert store.upsert_users(PROJECT, INTEGRATION, failing) == UpsertCounts(imported=2, updated=2)
    assert stored(store)["email"].to_dict() == {
        "A": "a2@x.com",
        "B": "b2@x.com",
        "C": "c@x.com",
        "D": "boom@example.com",
    }


@contextmanager
def refuse_email_in_database(url: str, email: str) -> Iterator[None]:
    """A trigger that makes the database reject one email, so a chunk fails inside the upsert statement."""
    engine = create_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        if sqlite:
            for operation in ("INSERT", "UPDATE"):
                connection.exec_driver_sql(
                    f"CREATE TRIGGER refuse_{operation.lower()} BEFORE {operation} ON audience_users "
                    f"WHEN NEW.email = '{email}' BEGIN SELECT RAISE(ABORT, 'boom'); END"
                )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_marked_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.email = '{email}' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_marked_email BEFORE INSERT OR UPDATE ON audience_users "
                "FOR EACH ROW EXECUTE FUNCTION refuse_marked_email()"
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if sqlite:
                connection.exec_driver_sql("DROP TRIGGER refuse_insert")
                connection.exec_driver_sql("DROP TRIGGER refuse_update")
            else:
                connection.exec_driver_sql("DROP TRIGGER refuse_marked_email ON audience_users")
                connection.exec_driver_sql("DROP FUNCTION refuse_marked_email()")
        engine.dispose()


def test_projects_and_integrations_are_kept_apart(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"]))
    store.upsert_users("other", INTEGRATION, make_chunk(["A"], first_name="Other project"))
    store.upsert_users(PROJECT, "int1_b", make_chunk(["A"], integration_id="int1_b"))
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], object_type="Contact"))

    assert len(store.users(PROJECT)) == 3
    assert store.users(PROJECT, INTEGRATION)["external_id"].tolist() == ["sf_int1_Contact_A", "sf_int1_Lead_A"]
    assert store.users(PROJECT, INTEGRATION, "Lead")["external_id"].tolist() == ["sf_int1_Lead_A"]
    assert store.users(PROJECT, "int1_b")["external_id"].tolist() == ["sf_int1_b_Lead_A"]
    assert store.users("other")["first_name"].tolist() == ["Other project"]
    counts = store.user_counts()
    assert counts[["project", "integration_id", "object_type", "users"]].values.tolist() == [
        ["other", "int1", "Lead", 1],
        ["proj", "int1", "Contact", 1],
        ["proj", "int1", "Lead", 1],
        ["proj", "int1_b", "Lead", 1],
    ]


def test_empty_chunk_is_a_no_op(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    assert store.upsert_users(PROJECT, INTEGRATION, make_chunk([])) == UpsertCounts()
    assert store.users(PROJECT).empty


def test_scan_marks_records_missing_from_a_full_listing_as_deleted(
    store: AudienceStore, make_chunk: ChunkFactory
) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C", "D"], modified=MAY_1))
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["E"], modified="2024-06-02T00:00:00Z"))
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["X"], object_type="Contact"))
    store.upsert_users(PROJECT, "int1_b", make_chunk(["Y"], integration_id="int1_b"))
    store.upsert_users("other", INTEGRATION, make_chunk(["D"]))
    scan_started_at = datetime(2024, 6, 1, tzinfo=UTC)

    # A full re-sync lists A and B through upsert (unchanged, so skipped but stamped) ...
    resynced = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B"], modified=MAY_1), scan_id="scan-1")
    # ... and C through an Id-only page; D is gone from Salesforce; E changed after the scan began.
    stamped = store.mark_seen(PROJECT, INTEGRATION, "Lead", ["C", "not-stored"], scan_id="scan-1")
    missing = store.mark_missing_deleted(
        PROJECT, INTEGRATION, "Lead", scan_id="scan-1", scan_started_at=scan_started_at
    )

    assert resynced == UpsertCounts(skipped=2)
    assert stamped == 1
    assert missing == 1
    assert store.users(PROJECT).set_index("external_id")["deleted"].to_dict() == {
        "sf_int1_Contact_X": False,
        "sf_int1_Lead_A": False,
        "sf_int1_Lead_B": False,
        "sf_int1_Lead_C": False,
        "sf_int1_Lead_D": True,
        "sf_int1_Lead_E": False,
        "sf_int1_b_Lead_Y": False,
    }
    assert not store.users("other")["deleted"].any()
    assert pd.notna(stored(store).loc["D", "deleted_at"])
    assert (
        store.mark_missing_deleted(PROJECT, INTEGRATION, "Lead", scan_id="scan-1", scan_started_at=scan_started_at) == 0
    )

    # The next scan must list records again: the stamp of scan-1 does not count for scan-2.
    assert (
        store.mark_missing_deleted(PROJECT, INTEGRATION, "Lead", scan_id="scan-2", scan_started_at=scan_started_at) == 3
    )


def test_incremental_sync_keeps_the_scan_stamp(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified=MAY_1), scan_id="scan-1")
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"], modified=MAY_2))  # no scan id: an incremental run

    missing = store.mark_missing_deleted(
        PROJECT, INTEGRATION, "Lead", scan_id="scan-1", scan_started_at=datetime(2024, 6, 1, tzinfo=UTC)
    )

    assert missing == 0


def test_stream_totals_match_chunk_by_chunk(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    chunks = [
        make_chunk(["A", "B"], modified=MAY_1),
        make_chunk(["B", "C", "C"], modified=[MAY_2, MAY_1, MAY_2]),
        make_chunk(["A"], modified=MAY_3, deleted=True),
        make_chunk([]),
    ]

    totals = store.upsert_stream(PROJECT, INTEGRATION, iter(chunks))
    rerun = store.upsert_stream(PROJECT, INTEGRATION, iter(chunks))

    assert totals == UpsertCounts(imported=3, updated=1, deleted=1, duplicates=1)
    assert rerun == UpsertCounts(skipped=5, duplicates=1)
    assert stored(store)["deleted"].to_dict() == {"A": True, "B": False, "C": False}


def test_stream_stops_at_a_bad_chunk_keeping_earlier_ones(store: AudienceStore, make_chunk: ChunkFactory) -> None:
    def chunks():
        yield make_chunk(["A"])
        yield make_chunk(["B"])
        yield make_chunk(["C"]).drop(columns=["email"])
        yield make_chunk(["D"])

    with pytest.raises(StoreInputError, match=r"missing: \['email'\]"):
        store.upsert_stream(PROJECT, INTEGRATION, chunks())

    assert list(stored(store).index) == ["A", "B"]


def test_stream_reports_a_failing_source_after_committing_earlier_chunks(
    store: AudienceStore, make_chunk: ChunkFactory
) -> None:
    def chunks():
        yield make_chunk(["A"])
        raise ConnectionError("Salesforce went away")

    with pytest.raises(ConnectionError, match="Salesforce went away"):
        store.upsert_stream(PROJECT, INTEGRATION, chunks())

    assert list(stored(store).index) == ["A"]


def test_rows_the_store_marked_gone_revive_when_listed_again_at_the_same_version(
        store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C"], modified=MAY_1), scan_id="scan-1")
    started = datetime(2024, 6, 1, tzinfo=UTC)
    assert store.mark_out_of_scope(PROJECT, INTEGRATION, "Lead", ["A", "Z"]) == 1  # Z was never stored
    assert store.mark_out_of_scope(PROJECT, INTEGRATION, "Lead", ["A"]) == 0  # already not live
    store.mark_seen(PROJECT, INTEGRATION, "Lead", ["A", "C"], "scan-2")
    assert store.mark_missing_deleted(PROJECT, INTEGRATION, "Lead", scan_id="scan-2", scan_started_at=started) == 1
    users = store.users(PROJECT, INTEGRATION, "Lead").set_index("salesforce_id")
    assert users["deleted"].to_dict() == {"A": True, "B": True, "C": False}
    assert users["removed_reason"].fillna("live").to_dict() == {"A": "out_of_scope", "B": "hard_deleted", "C": "live"}

    # Listed again with the same LastModifiedDate and the same content: back to life.
    counts = store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C"], modified=MAY_1))
    assert counts == UpsertCounts(updated=2, skipped=1)
    users = store.users(PROJECT, INTEGRATION, "Lead").set_index("salesforce_id")
    assert not users["deleted"].any() and users["removed_reason"].isna().all()
    assert store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C"], modified=MAY_1)) == \
        UpsertCounts(skipped=3)


def test_a_store_from_before_content_hashes_is_brought_up_to_date(
        store: AudienceStore, store_url: str, make_chunk: ChunkFactory) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:
        for column in ("content_hash", "removed_reason"):
            connection.exec_driver_sql(f"ALTER TABLE audience_users DROP COLUMN {column}")
        # The sync log of that version knew fewer events.
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE sync_log DROP CONSTRAINT ck_sync_log_event")
            connection.exec_driver_sql("ALTER TABLE sync_log ADD CONSTRAINT ck_sync_log_event "
                                       "CHECK (event IN ('sync_started', 'sync_completed'))")
        else:
            created = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'sync_log'").scalar()
            connection.exec_driver_sql("DROP TABLE sync_log")
            connection.exec_driver_sql(created.replace(", 'settings_changed'", "").replace(", 'reconciled'", ""))
    engine.dispose()
    store.log_event(PROJECT, INTEGRATION, "sync_started", object_type="Lead")
    with pytest.raises(DBAPIError):
        store.log_event(PROJECT, INTEGRATION, "settings_changed", object_type="Lead")

    store.create_schema()

    assert store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A"])) == UpsertCounts(imported=1)
    assert store.mark_out_of_scope(PROJECT, INTEGRATION, "Lead", ["A"]) == 1
    store.log_event(PROJECT, INTEGRATION, "settings_changed", object_type="Lead", message="re-reading")
    assert store.users(PROJECT, INTEGRATION, "Lead")["removed_reason"].tolist() == ["out_of_scope"]
    assert [entry.event for entry in store.sync_log(INTEGRATION)] == ["settings_changed", "sync_started"]


def test_a_stream_counts_each_record_in_the_window_of_its_modification(
        store: AudienceStore, make_chunk: ChunkFactory) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["A", "B", "C", "D"], modified=MAY_2))
    days = (datetime(2024, 5, 2, tzinfo=UTC), datetime(2024, 5, 3, tzinfo=UTC), datetime(2024, 5, 4, tzinfo=UTC))
    tally = WindowTally(days)
    chunks = [
        # May 1 is before the first window (history): it counts in the first.
        make_chunk(["A", "B", "C", "D", "E", "F"], modified=[MAY_3, MAY_3, MAY_1, MAY_2, MAY_1, MAY_1],
                   deleted=[False, True, True, False, False, True]),
        make_chunk(["G", "H"], modified=["2024-05-03T23:59:59.999999Z", "2024-05-09T00:00:00Z"]),
    ]

    totals = store.upsert_stream(PROJECT, INTEGRATION, iter(chunks), tally=tally)

    assert [tally.window(index) for index in range(3)] == [
        UpsertCounts(imported=1, deleted=1, skipped=2),  # E; F arrives deleted; C older than stored, D the same
        UpsertCounts(imported=1, updated=1, deleted=1),  # G; A newer; B deleted
        UpsertCounts(imported=1),  # H, after the last window's start
    ]
    assert totals == UpsertCounts(imported=3, updated=1, deleted=2, skipped=2)
    tally.add_deleted_to_last(4)
    assert tally.window(2) == UpsertCounts(imported=1, deleted=4)
