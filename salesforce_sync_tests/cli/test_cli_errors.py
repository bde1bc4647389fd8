"""What a person sees when a command cannot do its job: one line on stderr naming what failed (the integration,
the store URL, the Salesforce host, the failed step's own error), exit code 1 and no traceback; and the
per-object summary of a sync that worked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.cli.cli_support import (
    CLIENT_SECRET_ENV,
    PROJECT,
    config_text,
    emulator_integration,
    set_app_credentials,
)

CLOSED_PORT = 9  # discard: nothing listens there on the test machines


def one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The single stderr line of a failed command, without its `salesforce-sync COMMAND: error: ` prefix."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    prefix = f"salesforce-sync {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0].removeprefix(prefix)


@pytest.fixture
def recent_start() -> str:
    """A start date of yesterday, so a sync covers a day of hourly windows (a small Dagster run)."""
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


@pytest.fixture
def no_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"salesforce-sync {version('salesforce-sync')}"


def test_unknown_integration_is_one_line_naming_it_and_the_configured_ones(
        org: EmulatedOrg, use_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    assert main(["sync", "crn"]) == 1
    assert one_error_line(capsys, "sync") == "no integration 'crn' (configured: crm)"
    assert main(["preview", "crn"]) == 1
    assert "no integration 'crn'" in one_error_line(capsys, "preview")


def test_config_error_is_one_line_naming_the_file_and_field(
        use_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = use_config("projects: [acme]\nintegrations:\n  - id: crm\n    project: acme\n")
    assert main(["sync"]) == 1
    assert one_error_line(capsys, "sync") == f"{path}: integration 'crm': start: is required"


def test_unreachable_store_is_one_line_naming_its_url_without_the_password(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    monkeypatch.setenv("AUDIENCE_STORE_URL", f"postgresql://postgres:hunter2@127.0.0.1:{CLOSED_PORT}/audience")
    for command in ("status", "sync"):
        assert main([command]) == 1
        line = one_error_line(capsys, command)
        assert line.startswith(f"audience store postgresql+psycopg2://postgres:***@127.0.0.1:{CLOSED_PORT}/audience "
                               "(AUDIENCE_STORE_URL) cannot be reached: "), line
        assert "hunter2" not in line


def test_a_dagster_instance_that_cannot_open_is_one_line_naming_dagster_home_and_the_cause(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_url:\n      env: D2_UNSET_PG_URL\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("D2_UNSET_PG_URL", raising=False)
    assert main(["sync", "crm"]) == 1
    line = one_error_line(capsys, "sync")
    assert line.startswith(f"the Dagster instance in DAGSTER_HOME={home} cannot be opened: "), line
    assert '"D2_UNSET_PG_URL" which is not set' in line and "Stack Trace" not in line


def test_salesforce_tls_failure_is_one_line_naming_the_host_and_the_certificate_error(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    untrusted = emulator_integration(org).replace(f"    ca_file: {org.ca_file}\n", "")
    use_config(config_text(untrusted))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    assert main(["preview", "crm"]) == 1
    line = one_error_line(capsys, "preview")
    host = org.base_url.removeprefix("https://").rstrip("/")
    assert line.startswith(f"Salesforce at {host} cannot be reached: "), line
    assert "CERTIFICATE_VERIFY_FAILED" in line


@pytest.mark.slow
def test_refused_connection_is_one_line_after_the_retries(
        use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        org: EmulatedOrg) -> None:
    closed = emulator_integration(org).replace(org.base_url, f"https://127.0.0.1:{CLOSED_PORT}")
    use_config(config_text(closed))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    assert main(["preview", "crm"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"salesforce-sync preview: error: Salesforce at 127.0.0.1:{CLOSED_PORT} cannot be reached: ")
    assert "Connection refused" in err.strip().splitlines()[-1]


def test_a_failed_sync_step_prints_its_own_error_not_dagsters_wrapper(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, no_dagster_home: None,
        capsys: pytest.CaptureFixture[str], recent_start: str) -> None:
    use_config(config_text(emulator_integration(org, start=recent_start)))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    monkeypatch.setenv(CLIENT_SECRET_ENV, "not-the-secret")
    assert main(["sync", "crm"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("salesforce-sync sync: error: ")]
    assert errors, captured.err
    assert errors[0].startswith("salesforce-sync sync: error: integration 'crm', step salesforce__crm__Lead: ")
    assert "Dagster" not in captured.err and "Traceback" not in captured.err
    assert "invalid_client" in errors[0] or "client" in errors[0].lower()


def test_a_sync_prints_one_summary_line_per_object(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, no_dagster_home: None,
        capsys: pytest.CaptureFixture[str], store: AudienceStore, recent_start: str) -> None:
    use_config(config_text(emulator_integration(org, start=recent_start)))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    assert main(["sync", "crm"]) == 0
    out = capsys.readouterr().out
    summary = re.search(r"^  Lead: (\d+) imported, (\d+) updated, (\d+) deleted, (\d+) unchanged; (\d+) API calls, "
                        r"([\d.]+) s, ([\d,]+) records/s$", out, re.MULTILINE)
    assert summary, out
    imported, updated, deleted, unchanged, calls = (int(summary.group(i)) for i in range(1, 6))
    users = store.users(PROJECT, "crm")
    assert (imported, deleted) == (int((~users["deleted"]).sum()), int(users["deleted"].sum()))
    assert imported > 0 and (updated, unchanged) == (0, 0)
    assert calls >= 1
    completed = store.sync_log("crm", SyncEvent.SYNC_COMPLETED)
    lead_seconds = sum(entry.duration_seconds for entry in completed if entry.object_type == "Lead")
    assert float(summary.group(6)) == round(lead_seconds, 2)
    assert int(summary.group(7).replace(",", "")) == round((imported + deleted) / lead_seconds)


def test_subprocess_error_has_no_traceback_unless_debug_asks(
        org: EmulatedOrg, use_config: Callable[[str], Path]) -> None:
    use_config(config_text(emulator_integration(org)))
    command = [sys.executable, "-m", "salesforce_sync.cli"]
    plain = subprocess.run([*command, "sync", "crn"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert plain.returncode == 1
    assert plain.stderr.strip() == "salesforce-sync sync: error: no integration 'crn' (configured: crm)"
    debug = subprocess.run([*command, "--debug", "sync", "crn"], capture_output=True, text=True, env=os.environ,
                           timeout=120)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "no integration 'crn'" in debug.stderr
