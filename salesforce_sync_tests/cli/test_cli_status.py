"""`salesforce-sync status` against a real audience store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.store import AudienceStore, UpsertCounts
from salesforce_sync_tests.cli.cli_support import people

AUTH = "{method: refresh_token, client_id_env: SF_ID, refresh_token_env: SF_TOKEN}"
RULES = "{sync_rules: {rules: []}, field_mappings: []}"


def integration(integration_id: str, *, active: bool = True,
                objects: str = f"{{Lead: {RULES}, Contact: {RULES}}}") -> str:
    return (f"\n  - {{id: {integration_id}, project: acme, environment: production, auth: {AUTH}, "
            f"start: 2026-11-01, active: {str(active).lower()}, objects: {objects}}}")


CONFIG = ("projects: [acme]\nintegrations:" + integration("healthy") + integration("broken")
          + integration("recovered") + integration("paused", active=False)
          + integration("draft", objects="{Lead: {field_mappings: []}, Contact: " + RULES + "}"))

T1 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 9, 30, 15, tzinfo=UTC)
T3 = datetime(2026, 11, 22, 10, 45, tzinfo=UTC)
LONG_ERROR = ("integration 'broken': GET query failed with HTTP 400: INVALID_FIELD: No such column "
              "'Lead_Score__c' on entity 'Contact'.\nIf you are attempting to use a custom field, append '__c'.")


def fill_store(url: str) -> None:
    """Two healthy objects with people, a failed object, a recovered one, a paused and a draft integration."""
    with AudienceStore(url) as store:
        store.create_schema()
        store.upsert_users("acme", "healthy", people("healthy", "Lead", ["00Q1", "00Q2", "00Q3", "00Q4"],
                                                     deleted=[False, False, False, True]))
        store.upsert_users("acme", "healthy", people("healthy", "Contact", ["0031", "0032"], deleted=[False, False]))
        store.record_success("healthy", "Lead", window_end=T1, counts=UpsertCounts(imported=3), at=T1)
        store.record_success("healthy", "Contact", window_end=T2, counts=UpsertCounts(imported=2), at=T2)
        store.record_success("broken", "Lead", window_end=T1, counts=UpsertCounts(), at=T1)
        store.record_failure("broken", "Contact", error=LONG_ERROR, at=T3)
        store.record_failure("recovered", "Lead", error="timed out", at=T1)
        store.record_success("recovered", "Lead", window_end=T2, counts=UpsertCounts(), at=T2)
        store.record_failure("paused", "Lead", error="boom", at=T2)


def table_rows(output: str) -> dict[str, list[str]]:
    """Table rows by integration id, cells split on the two-space column gaps."""
    lines = output.strip().splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["INTEGRATION", "PROJECT", "STATUS", "LAST SUCCESS (UTC)", "LIVE",
                                             "DELETED", "LAST ERROR"]
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line)
        rows[cells[0]] = cells
    return rows


def test_status_table_shows_badges_last_success_errors_and_counts(
        store_url: str, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(CONFIG)
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    fill_store(store_url)

    assert main(["status"]) == 0
    output = capsys.readouterr().out
    rows = table_rows(output)

    assert list(rows) == ["healthy", "broken", "recovered", "paused", "draft"]
    assert rows["healthy"] == ["healthy", "acme", "Active", "2026-11-21T09:30:15Z", "5", "1", "-"]
    broken = rows["broken"]
    assert broken[2:6] == ["Error", "2026-11-20T08:00:00Z", "0", "0"]
    assert broken[6].startswith("2026-11-22T10:45:00Z integration 'broken': GET query failed")
    assert broken[6].endswith("...") and "\n" not in broken[6] and len(broken[6]) < len(LONG_ERROR)
    assert rows["recovered"][2:4] == ["Active", "2026-11-21T09:30:15Z"]
    assert rows["recovered"][6] == "2026-11-20T08:00:00Z timed out"
    assert rows["paused"][2] == "Inactive"
    assert rows["draft"][2:4] == ["Incomplete", "never"]
    assert "draft: Incomplete, missing: objects.Lead.sync_rules" in output
    assert "paused: Inactive (active: false in the config)" in output


def test_status_json_keeps_the_error_verbatim_and_counts_per_object(
        store_url: str, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(CONFIG)
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    fill_store(store_url)

    assert main(["status", "--json"]) == 0
    reports = {report["integration"]: report for report in json.loads(capsys.readouterr().out)}

    healthy = reports["healthy"]
    assert healthy["status"] == "Active" and healthy["records"] == {"live": 5, "deleted": 1}
    assert [(o["object"], o["status"], o["records"]) for o in healthy["objects"]] == [
        ("Lead", "Active", {"live": 3, "deleted": 1}), ("Contact", "Active", {"live": 2, "deleted": 0})]
    broken = reports["broken"]
    assert broken["status"] == "Error"
    assert broken["last_error"] == LONG_ERROR
    assert broken["last_error_at"] == "2026-11-22T10:45:00Z"
    assert broken["objects"][1]["status"] == "Error"
    assert reports["paused"]["status"] == "Inactive" and reports["paused"]["active"] is False
    draft = reports["draft"]
    assert draft["status"] == "Incomplete"
    assert draft["missing"] == ["objects.Lead.sync_rules"]
    assert draft["last_success_at"] is None and draft["objects"][0]["status"] is None


def test_status_reads_the_default_sqlite_store_under_the_sync_home(
        use_config: Callable[[str], Path], cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    use_config(CONFIG)
    fill_store(f"sqlite:///{cli_env / 'audience.db'}")

    assert main(["status"]) == 0

    assert table_rows(capsys.readouterr().out)["broken"][2] == "Error"


def test_status_with_a_broken_config_names_the_file_and_fails(
        use_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = use_config("projects: [acme]\nintegrations:\n  - {id: Bad-Id, project: acme, start: 2026-11-01}\n")

    assert main(["status"]) == 1

    error = capsys.readouterr().err
    assert str(path) in error and "'Bad-Id' is not a valid id" in error
