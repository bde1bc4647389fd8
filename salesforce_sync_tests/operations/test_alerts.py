"""Alerts through Dagster's run-status sensors and health checks: a failing integration tells its owners once
(webhook, Slack incoming webhook and email, each to a local receiver), a repeated failure says nothing more, and
the first success after it announces the recovery once; a health check failing with ERROR severity does the
same under its own subject, so sync and check alerts never swallow each other."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from salesforce_sync.runs.alerts import announce, due, last_announced
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent, UpsertCounts
from salesforce_sync_tests.operations.support import (
    OBJECTS,
    build_config,
    hours_ago,
    offline_integration,
    org_integration,
    run_job,
)
from salesforce_sync_tests.operations.test_status_flip import run_status_context

WEBHOOK_ENV, SLACK_ENV = "OPS_ALERT_WEBHOOK_URL", "OPS_ALERT_SLACK_URL"


class Receiver:
    """A local HTTP endpoint that keeps every JSON body posted to it, by path."""

    def __init__(self) -> None:
        received: list[tuple[str, dict]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posted(self, path: str) -> list[dict]:
        return [body for posted_path, body in self.received if posted_path == path]


class MailSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP to accept messages from smtplib; keeps each message's text."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.messages: list[str] = []
        sink = self

        class Session(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ready")
                while line := self.rfile.readline().decode().strip():
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "DATA":
                        self.reply("354 go ahead")
                        data = []
                        while (text := self.rfile.readline().decode()) not in (".\r\n", ""):
                            data.append(text)
                        sink.messages.append("".join(data))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        super().__init__(("127.0.0.1", 0), Session)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    serving = Receiver()
    yield serving
    serving.server.shutdown()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink()
    yield sink
    sink.shutdown()


def test_failures_are_announced_once_per_change_of_state() -> None:
    assert due(None, "failing") and due("recovered", "failing") and not due("failing", "failing")
    assert due("failing", "recovered") and not due(None, "recovered") and not due("recovered", "recovered")


@pytest.mark.slow
def test_a_failing_integration_alerts_its_owners_once_and_once_more_when_it_recovers(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance, receiver: Receiver, mail: MailSink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url + "/hooks/sync")
    monkeypatch.setenv(SLACK_ENV, receiver.url + "/slack")
    alerts = {"webhook_url_env": WEBHOOK_ENV, "slack_webhook_url_env": SLACK_ENV,
              "email": {"smtp_host": "127.0.0.1", "smtp_port": mail.server_address[1], "starttls": False,
                        "from_address": "sync@example.com", "to": ["owners@example.com"]}}
    defs = build_definitions(build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]}, alerts=alerts)))
    context = dg.build_sensor_context(instance=instance, definitions=defs,
                                      resources={"audience_store": defs.resources["audience_store"]})
    tags = defs.resolve_sensor_def("sync_acme_windows")(context).run_requests[0].tags
    on_failure = defs.resolve_sensor_def("sync_failure_log")
    on_success = defs.resolve_sensor_def("sync_success_status")
    org.control.inject_error(r"/queryAll$", 400, "QUERY_TIMEOUT", "Your query request was running for too long.",
                             count=2)

    for _ in range(2):
        failed = run_job(defs, "sync_acme", instance, tags)
        assert not failed.success
        on_failure(run_status_context(instance, defs, "sync_failure_log", failed,
                                      failed.get_run_failure_event()).for_run_failure())

    hooks = receiver.posted("/hooks/sync")
    assert [hook["state"] for hook in hooks] == ["failing"]
    assert hooks[0]["integration"] == "acme" and "running for too long" in hooks[0]["message"]
    assert hooks[0]["run_id"] is not None
    [slack] = receiver.posted("/slack")
    assert "acme is failing" in slack["text"] and "running for too long" in slack["text"]
    assert len(mail.messages) == 1 and "Subject: salesforce-sync: integration acme is failing" in mail.messages[0]

    for _ in range(2):
        succeeded = run_job(defs, "sync_acme", instance, tags)
        assert succeeded.success
        on_success(run_status_context(instance, defs, "sync_success_status", succeeded,
                                      succeeded.get_run_success_event()))

    assert [hook["state"] for hook in receiver.posted("/hooks/sync")] == ["failing", "recovered"]
    assert len(receiver.posted("/slack")) == 2 and "acme has recovered" in receiver.posted("/slack")[1]["text"]
    assert len(mail.messages) == 2 and "acme has recovered" in mail.messages[1]
    with AudienceStore(app_store_url) as store:
        sent = store.sync_log("acme", SyncEvent.ALERT_SENT)
    assert [entry.details["state"] for entry in reversed(sent)] == ["failing", "recovered"]
    assert all(entry.details["undelivered"] == [] for entry in sent)


def test_an_unset_alert_url_is_reported_not_raised(
        app_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    integration = build_config(offline_integration("quiet", alerts={"webhook_url_env": WEBHOOK_ENV})).integrations[0]
    with AudienceStore(app_store_url) as store:
        store.create_schema()
        alert = announce(store, integration, "failing", message="boom")
        [entry] = store.sync_log("quiet", SyncEvent.ALERT_SENT)
    assert alert is not None and alert.state == "failing"
    assert entry.details["undelivered"] == [f"webhook: environment variable {WEBHOOK_ENV} is not set"]


@pytest.mark.slow
def test_a_failing_health_check_alerts_once_apart_from_sync_failures_and_once_more_when_it_passes(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url + "/hooks/health")
    lead = {"sync_rules": {"rules": []},
            "field_mappings": [{"field": "Segment__c", "property": "segment", "type": "string"}]}
    config = build_config(org_integration(org, objects={"Lead": lead}, alerts={"webhook_url_env": WEBHOOK_ENV}))
    defs = build_definitions(config)
    with AudienceStore(app_store_url) as store:
        store.create_schema()
        store.record_success("acme", "Lead", window_end=hours_ago(0), counts=UpsertCounts(), at=datetime.now(UTC))
        # The sync is already failing and its owners were told: a failing check is news all the same.
        assert announce(store, config.integrations[0], "failing", message="sync broke") is not None

    for _ in range(2):  # the org has no Segment__c: field_mappings fails (ERROR) on both runs
        assert run_job(defs, "health_acme", instance).success
    org.control.add_field("Lead", "Segment__c", "string", label="Segment")
    assert run_job(defs, "health_acme", instance).success

    hooks = receiver.posted("/hooks/health")
    assert [(hook["subject"], hook["state"]) for hook in hooks] == [
        ("sync", "failing"), ("health:field_mappings", "failing"), ("health:field_mappings", "recovered")]
    assert "Segment__c" in hooks[1]["message"] and hooks[1]["run_id"] is not None
    with AudienceStore(app_store_url) as store:
        assert last_announced(store, "acme", "sync") == "failing"  # the check's recovery is not the sync's
        titles = [entry.message for entry in store.sync_log("acme", SyncEvent.ALERT_SENT)]
    assert titles[0] == "salesforce-sync: integration acme health check field_mappings has recovered"


def test_an_unset_secret_alerts_once_as_failing_credentials(
        app_store_url: str, instance: dg.DagsterInstance, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url + "/hooks/secret")
    integration = offline_integration("nosecret", alerts={"webhook_url_env": WEBHOOK_ENV}, environment="production",
                                      auth={"method": "refresh_token", "client_id_env": "NOSECRET_ID",
                                            "client_secret_env": "NOSECRET_SECRET",
                                            "refresh_token_env": "NOSECRET_TOKEN"})
    monkeypatch.delenv("NOSECRET_TOKEN", raising=False)
    defs = build_definitions(build_config(integration))

    assert run_job(defs, "health_nosecret", instance).success

    hooks = receiver.posted("/hooks/secret")
    assert [(hook["subject"], hook["state"]) for hook in hooks] == [("health:credentials", "failing")]
    assert "NOSECRET" in hooks[0]["message"]
