"""`salesforce-sync logs` against a real audience store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.store import AudienceStore

T1 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
WINDOW = {"window_start": datetime(2026, 11, 20, 7, tzinfo=UTC), "window_end": datetime(2026, 11, 20, 8, tzinfo=UTC)}
FAILURE = "integration 'crm': Salesforce refused the login: invalid_grant: expired access/refresh token\n(reconnect)"
CONFIG = ("projects: [acme]\nintegrations:\n  - {id: crm, project: acme, environment: production, "
          "start: 2026-11-01}\n  - {id: other, project: acme, environment: production, start: 2026-11-01}\n")


@pytest.fixture
def filled_store(store_url: str, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """Five entries over two days and two integrations, in the store AUDIENCE_STORE_URL names."""
    use_config(CONFIG)
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    with AudienceStore(store_url) as store:
        store.log_event("acme", "crm", "sync_started", object_type="Lead", run_id="run-1234567890", at=T1, **WINDOW)
        store.log_event("acme", "crm", "records_imported", object_type="Lead", count=120, run_id="run-1234567890",
                        at=T1 + timedelta(minutes=1), **WINDOW)
        store.log_event("acme", "crm", "sync_completed", object_type="Lead", count=120, duration_seconds=12.34,
                        run_id="run-1234567890", at=T1 + timedelta(minutes=2), details={"skipped": 3}, **WINDOW)
        store.log_event("acme", "crm", "sync_failed", object_type="Contact", message=FAILURE,
                        at=T1 + timedelta(days=1))
        store.log_event("acme", "other", "health_check", message="api_limits passed", at=T1 + timedelta(days=2))
    return store_url


def rows(output: str) -> list[list[str]]:
    lines = output.strip().splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["AT (UTC)", "INTEGRATION", "OBJECT", "EVENT", "COUNT", "SECONDS",
                                             "WINDOW (UTC)", "RUN", "MESSAGE"]
    return [re.split(r"\s{2,}", line, maxsplit=8) for line in lines[1:]]


def test_logs_lists_every_entry_newest_first_in_an_aligned_table(
        filled_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs"]) == 0
    table = rows(capsys.readouterr().out)

    assert [row[3] for row in table] == ["health_check", "sync_failed", "sync_completed", "records_imported",
                                         "sync_started"]
    assert table[2] == ["2026-11-20T08:02:00Z", "crm", "Lead", "sync_completed", "120", "12.3",
                        "2026-11-20T07:00:00Z..2026-11-20T08:00:00Z", "run-1234", "-"]
    assert table[1][:3] == ["2026-11-21T08:00:00Z", "crm", "Contact"]
    assert table[1][-1] == FAILURE.replace("\n", "\\n")


@pytest.mark.parametrize(("argv", "events"), [
    (["logs", "crm"], ["sync_failed", "sync_completed", "records_imported", "sync_started"]),
    (["logs", "crm", "--event", "sync_failed"], ["sync_failed"]),
    (["logs", "--since", "2026-11-21"], ["health_check", "sync_failed"]),
    (["logs", "--since", "2026-11-20T10:01:30+02:00"], ["health_check", "sync_failed", "sync_completed"]),
    (["logs", "crm", "--since", "2026-11-20T08:01:00"], ["sync_failed", "sync_completed", "records_imported"]),
    (["logs", "--limit", "2"], ["health_check", "sync_failed"]),
])
def test_logs_filters_by_integration_event_since_and_limit(
        filled_store: str, capsys: pytest.CaptureFixture[str], argv: list[str], events: list[str]) -> None:
    assert main(argv) == 0

    assert [row[3] for row in rows(capsys.readouterr().out)] == events


def test_logs_json_keeps_messages_verbatim(filled_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "crm", "--json", "--limit", "2"]) == 0

    failed, completed = json.loads(capsys.readouterr().out)
    assert failed["message"] == FAILURE and failed["at"] == "2026-11-21T08:00:00Z" and failed["object"] == "Contact"
    assert completed["details"] == {"skipped": 3} and completed["duration_seconds"] == 12.34
    assert completed["window_start"] == "2026-11-20T07:00:00Z" and completed["run_id"] == "run-1234567890"


def test_logs_of_a_configured_integration_without_entries_says_so(
        filled_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "other", "--event", "sync_failed"]) == 0

    assert capsys.readouterr().out.strip() == "no sync log entries match"


def test_logs_of_an_unknown_integration_names_it(filled_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "crn"]) == 1

    error = capsys.readouterr().err.strip()
    assert error == "salesforce-sync logs: error: no integration 'crn' (configured: crm, other)"


@pytest.mark.parametrize(("argv", "message"), [
    (["logs", "--since", "yesterday"], "--since 'yesterday' is not a date (2026-11-20) or datetime"),
    (["logs", "--event", "synced"], "'synced' is not a sync log event; use one of sync_started, sync_completed"),
    (["logs", "--limit", "0"], "'0' is not a whole number of 1 or more"),
])
def test_logs_refuses_bad_options_naming_the_value(
        cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
