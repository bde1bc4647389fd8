"""The retry policy on its own (a recorded sleep instead of waiting): which failures are transient, that a
Retry-After is honoured and one too long is not waited for, and that waits grow with jitter within bounds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests

from salesforce_sync.salesforce.retries import (
    RetryPolicy,
    SalesforceRequestError,
    retry_after_seconds,
    transient_cause,
)


def failing(errors: list[BaseException]):
    """A call that raises each error in turn, then returns "done"."""
    def call() -> str:
        if errors:
            raise errors.pop(0)
        return "done"
    return call


def recorded_policy(sleeps: list[float], **settings: float) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, **settings)


@pytest.mark.parametrize("error, cause", [
    (SalesforceRequestError("x", status=503, error_code="SERVER_UNAVAILABLE"), "HTTP 503 SERVER_UNAVAILABLE"),
    (SalesforceRequestError("x", status=500), "HTTP 500"),
    (SalesforceRequestError("x", status=429), "HTTP 429"),
    (SalesforceRequestError("x", status=400, error_code="UNABLE_TO_LOCK_ROW"), "HTTP 400 UNABLE_TO_LOCK_ROW"),
    (requests.exceptions.ChunkedEncodingError("cut"), "connection lost (ChunkedEncodingError)"),
    (requests.ConnectionError("reset"), "connection lost (ConnectionError)"),
    (SalesforceRequestError("x", status=400, error_code="INVALID_FIELD"), None),
    (SalesforceRequestError("x", status=400, error_code="INVALID_QUERY_LOCATOR"), None),
    (SalesforceRequestError("x", status=403, error_code="REQUEST_LIMIT_EXCEEDED"), None),
    (ValueError("a bug"), None),
])
def test_transient_failures_are_told_from_permanent_ones(error: BaseException, cause: str | None) -> None:
    assert transient_cause(error) == cause


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_retry_waits_at_least_the_retry_after_and_logs_the_call_and_attempt(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    policy = recorded_policy(sleeps, initial_seconds=0.5, jitter_seconds=0.1)
    call = failing([SalesforceRequestError("busy", status=503, retry_after=7.0),
                    SalesforceRequestError("busy", status=503)])
    with caplog.at_level(logging.WARNING):
        assert policy.call("GET limits", call, log=logging.getLogger("retry-test")) == "done"
    assert sleeps[0] == 7.0
    assert 1.0 <= sleeps[1] <= 1.1  # the second backoff step, plus jitter
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "GET limits: attempt 1 of 5 failed", "GET limits: attempt 2 of 5 failed"]


def test_a_retry_after_beyond_the_bound_is_not_waited_for() -> None:
    sleeps: list[float] = []
    policy = recorded_policy(sleeps, max_retry_after_seconds=60)
    with pytest.raises(SalesforceRequestError, match="later"):
        policy.call("GET query", failing([SalesforceRequestError("later", status=429, retry_after=3600)]),
                    log=logging.getLogger("retry-test"))
    assert sleeps == []


def test_waits_grow_exponentially_up_to_the_bound_and_attempts_are_bounded() -> None:
    sleeps: list[float] = []
    policy = recorded_policy(sleeps, attempts=6, initial_seconds=1, max_seconds=4, jitter_seconds=0)
    errors: list[BaseException] = [requests.ConnectionError("reset") for _ in range(6)]
    with pytest.raises(requests.ConnectionError):
        policy.call("GET query", failing(errors), log=logging.getLogger("retry-test"))
    assert sleeps == [1, 2, 4, 4, 4]
