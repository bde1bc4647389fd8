"""Tell an integration's owners when it starts failing and when it recovers: once per change of state,
not once per failed run, through a webhook, a Slack incoming webhook or email (per integration config).

Each integration has one state per *subject*: "sync" (its runs) and "health:<check>" (a health check failing
with ERROR severity), so a failing check and a failing sync never swallow each other's alerts. The last state
announced for a subject is the newest `alert_sent` entry of the sync log carrying it, so every process (the
daemon's sensors, a CLI run) sees the same memory and a retried failure is not announced twice.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

import requests

from salesforce_sync.config.models import AlertsConfig, EmailAlerts, IntegrationConfig
from salesforce_sync.store import AudienceStore, SyncEvent

log = logging.getLogger(__name__)
State = Literal["failing", "recovered"]
TIMEOUT_SECONDS = 10
SYNC_SUBJECT = "sync"
ALERTS_SCANNED = 500  # newest alert_sent entries of an integration searched for a subject's last state


def health_subject(check: str) -> str:
    return f"health:{check}"


@dataclass(frozen=True)
class Alert:
    integration: str
    project: str
    state: State
    message: str
    run_id: str | None
    at: datetime
    subject: str = SYNC_SUBJECT

    @property
    def title(self) -> str:
        verb = "is failing" if self.state == "failing" else "has recovered"
        what = "" if self.subject == SYNC_SUBJECT else f" health check {self.subject.removeprefix('health:')}"
        return f"salesforce-sync: integration {self.integration}{what} {verb}"

    def payload(self) -> dict[str, str | None]:
        return {"integration": self.integration, "project": self.project, "subject": self.subject,
                "state": self.state, "message": self.message, "run_id": self.run_id, "at": self.at.isoformat()}


def due(last_announced: State | None, outcome: State) -> bool:
    """A failure is announced unless failing was the last thing said; a recovery only after a failure."""
    if outcome == "failing":
        return last_announced != "failing"
    return last_announced == "failing"


def last_announced(store: AudienceStore, integration_id: str, subject: str) -> State | None:
    """The state last announced for one subject of an integration (entries without a subject are syncs')."""
    for entry in store.sync_log(integration_id=integration_id, event=SyncEvent.ALERT_SENT, limit=ALERTS_SCANNED):
        details = entry.details or {}
        if details.get("subject", SYNC_SUBJECT) == subject:
            return details.get("state")
    return None


def announce(store: AudienceStore, integration: IntegrationConfig, outcome: State, *, message: str,
             run_id: str | None = None, environ: Mapping[str, str] | None = None,
             subject: str = SYNC_SUBJECT) -> Alert | None:
    """Send the alert for this outcome of `subject` if it changes what the owners were last told about it;
    returns it, or None."""
    if integration.alerts is None:
        return None
    if not due(last_announced(store, integration.id, subject), outcome):
        return None
    alert = Alert(integration.id, integration.project, outcome, message, run_id, datetime.now(UTC), subject)
    problems = deliver(integration.alerts, alert, os.environ if environ is None else environ)
    store.log_event(integration.project, integration.id, SyncEvent.ALERT_SENT, run_id=run_id,
                    message=alert.title + ("" if not problems else " (not delivered: " + "; ".join(problems) + ")"),
                    details={"subject": subject, "state": outcome, "undelivered": problems})
    return alert


def deliver(config: AlertsConfig, alert: Alert, environ: Mapping[str, str]) -> list[str]:
    """Send on every configured channel; returns one line per channel that failed (never the secret)."""
    problems = []
    channels = [(name, env) for name, env in (("webhook", config.webhook_url_env),
                                              ("slack", config.slack_webhook_url_env)) if env]
    for name, env in channels:
        url = environ.get(env, "").strip()
        if not url:
            problems.append(f"{name}: environment variable {env} is not set")
            continue
        body = alert.payload() if name == "webhook" else {"text": f"*{alert.title}*\n{alert.message}"}
        try:
            requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"},
                          timeout=TIMEOUT_SECONDS).raise_for_status()
        except requests.RequestException as error:
            problems.append(f"{name}: {type(error).__name__} (status {getattr(error.response, 'status_code', '-')})")
    if config.email is not None:
        try:
            _send_email(config.email, alert, environ)
        except (OSError, smtplib.SMTPException, KeyError) as error:
            problems.append(f"email: {type(error).__name__}: {error}")
    for problem in problems:
        log.warning("alert for %s not delivered: %s", alert.integration, problem)
    return problems


def _send_email(config: EmailAlerts, alert: Alert, environ: Mapping[str, str]) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = alert.title, config.from_address, ", ".join(config.to)
    message.set_content(f"{alert.message}\n\nrun: {alert.run_id or '-'}\nat: {alert.at.isoformat()}\n")
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username_env and config.password_env:
            smtp.login(environ[config.username_env], environ[config.password_env])
        smtp.send_message(message)
