"""Object settings keep schema_drift's baseline (the describe's field names) and the mappings it added next to
the fingerprint, on SQLite and PostgreSQL; a store created before those columns existed gets them on start."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, inspect

from salesforce_sync.store import AudienceStore

MAPPING = {"field": ["Favorite_Color__c"], "property": "favorite_color", "type": "string"}


def test_baseline_and_auto_mappings_round_trip_and_survive_a_new_fingerprint(store: AudienceStore) -> None:
    store.create_schema()
    store.record_object_settings("int1", "Lead", fingerprint="a" * 64, known_fields=("Id", "Email"))
    store.record_object_settings("int1", "Lead", auto_mappings=[MAPPING])
    store.record_object_settings("int1", "Lead", fingerprint="b" * 64, reconciled_at=datetime.now(UTC))

    settings = store.object_settings("int1", "Lead")

    assert settings.fingerprint == "b" * 64
    assert settings.known_fields == ("Id", "Email") and settings.auto_mappings == (MAPPING,)
    store.record_object_settings("int1", "Contact", reconciled_at=datetime.now(UTC))
    contact = store.object_settings("int1", "Contact")
    assert contact.known_fields is None and contact.auto_mappings == ()


def test_a_store_from_before_the_schema_baseline_gets_its_columns_and_keeps_its_rows(store_url: str) -> None:
    with AudienceStore(store_url) as store:
        store.create_schema()
        store.record_object_settings("int1", "Lead", fingerprint="a" * 64)
    engine = create_engine(store_url)
    with engine.begin() as connection:
        for column in ("known_fields", "auto_mappings", "formula_refreshed_at"):
            connection.exec_driver_sql(f"ALTER TABLE object_settings DROP COLUMN {column}")
    engine.dispose()

    with AudienceStore(store_url) as store:
        store.create_schema()
        store.record_object_settings("int1", "Lead", known_fields=["Id"])
        refreshed_at = datetime.now(UTC)
        store.record_object_settings("int1", "Lead", formula_refreshed_at=refreshed_at)
        settings = store.object_settings("int1", "Lead")
    engine = create_engine(store_url)
    columns = {column["name"] for column in inspect(engine).get_columns("object_settings")}
    engine.dispose()
    assert {"known_fields", "auto_mappings", "formula_refreshed_at"} <= columns
    assert (settings.fingerprint, settings.known_fields) == ("a" * 64, ("Id",))
    assert settings.formula_refreshed_at == refreshed_at
