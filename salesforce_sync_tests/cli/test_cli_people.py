"""`salesforce-sync people` against a real audience store (SQLite file and PostgreSQL): counts per project, one
person by email with their records, and one-line answers for an unknown project or email."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import people


@pytest.fixture
def project(store_url: str, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """A project whose converted Lead 00Q1 became Contact 0031 (another email); Lead 00Q2 stands alone."""
    name = f"p{uuid.uuid4().hex[:8]}"
    use_config(f"projects: [{name}, empty]\nintegrations: []\n")
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    leads = people("crm", "Lead", ["00Q1", "00Q2"], deleted=[False, False])
    leads["properties"] = [{"converted_contact_id": "0031", "is_converted": True}, {}]
    contacts = people("crm", "Contact", ["0031"], deleted=[False])
    contacts["unsubscribed"] = [True]
    with AudienceStore(store_url) as store:
        store.upsert_users(name, "crm", leads)
        store.upsert_users(name, "crm", contacts)
        rebuild_people(store, name)
    return name


def test_people_counts_per_project(project: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["people", project]) == 0
    lines = [re.split(r"\s{2,}", line) for line in capsys.readouterr().out.strip().splitlines()]
    assert lines == [["PROJECT", "PEOPLE", "RECORDS", "MERGED"], [project, "2", "3", "1"]]


def test_people_shows_one_person_and_their_records(project: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["people", "--email", " 00Q1@EXAMPLE.com"]) == 0
    head, *table = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(rf"person p_[0-9a-f]{{24}} in project {project}: 0031@example.com, unsubscribed", head)
    assert [re.split(r"\s{2,}", line) for line in table] == [
        ["OBJECT", "INTEGRATION", "SALESFORCE ID", "EMAIL", "NOTE"],
        ["Contact", "crm", "0031", "0031@example.com", "primary"],
        ["Lead", "crm", "00Q1", "00q1@example.com", "converted"]]


def test_people_answers_in_one_line_when_nothing_matches(project: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["people", "empty", "--email", "00Q1@example.com"]) == 1
    assert capsys.readouterr().out.startswith("no person in project 'empty' has the email '00Q1@example.com'")
    assert main(["people", "nope"]) == 1
    assert capsys.readouterr().err.strip() == (f"salesforce-sync people: error: no project 'nope' (configured: "
                                               f"{project}, empty)")
