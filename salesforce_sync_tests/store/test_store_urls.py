"""Store URLs: normalisation, SQLite file placement and settings, refused URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from salesforce_sync.store import AudienceStore, StoreInputError, normalize_store_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:p@db:5432/audience", "postgresql+psycopg2://u:p@db:5432/audience"),
        ("postgres://u@db/audience", "postgresql+psycopg2://u@db/audience"),
        ("  postgresql+psycopg2://u@db/audience\n", "postgresql+psycopg2://u@db/audience"),
    ],
)
def test_postgres_urls_get_the_psycopg2_driver(raw: str, expected: str) -> None:
    assert normalize_store_url(raw).render_as_string(hide_password=False) == expected


def test_sqlite_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert normalize_store_url("sqlite:///data/store.db").database == str(tmp_path / "data" / "store.db")
    assert normalize_store_url("sqlite:////srv/store.db").database == "/srv/store.db"
    assert normalize_store_url("sqlite:///~/store.db").database == str(tmp_path / "home" / "store.db")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "URL is empty"),
        ("sqlite://", "has no database file"),
        ("sqlite:///:memory:", "has no database file"),
        ("postgresql+psycopg://u@db/x", r"driver 'postgresql\+psycopg'; the store needs psycopg2"),
        ("mysql://u@db/x", "scheme 'mysql' is not supported"),
        ("not a url", "is not a database URL"),
    ],
)
def test_unusable_urls_are_refused(raw: str, message: str) -> None:
    with pytest.raises(StoreInputError, match=message):
        normalize_store_url(raw)


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(StoreInputError) as refused:
        normalize_store_url("postgresql+asyncpg://user:s3cret@db/x")
    assert "s3cret" not in str(refused.value)


def test_sqlite_store_creates_folders_and_uses_wal(tmp_path: Path) -> None:
    database = tmp_path / "a" / "b" / "store.db"

    with AudienceStore(f"sqlite:///{database}") as store:
        store.create_schema()
        store.create_schema()  # idempotent

    assert database.exists()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"audience_users", "sync_log", "salesforce_orgs", "integration_state"} <= tables
