"""When a Salesforce call is tried again, and how long to wait: the one retry policy of every call the client makes.

Transient: a connection lost before or during a response (a REST page or a Bulk CSV cut half-way), HTTP 429 and
5xx (waiting at least the `Retry-After` Salesforce sends), and the errorCodes Salesforce documents as "try again"
(UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE). Anything else (a bad query, a missing field, a refused quota) fails at
once. Waits grow exponentially with random jitter and are bounded, as are the attempts; each retry is a warning
naming the call and the attempt. INVALID_QUERY_LOCATOR is not retried here: the query restarts after the last
record read (see `SalesforceClient.rest_chunks`).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import requests
import tenacity
import urllib3

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERROR_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
T = TypeVar("T")


class SalesforceRequestError(Exception):
    """A Salesforce API call failed; the message carries Salesforce's errorCode and text verbatim.

    `status`, `error_code` and `retry_after` (seconds, from the Retry-After header) say whether it is worth
    another try; `body` is Salesforce's parsed error body (a list of {errorCode, message, fields}) when it sent one.
    `outcome_unknown`: the request may have been applied but its answer was lost, so it must not be sent again
    blindly (a create would be made twice)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None,
                 retry_after: float | None = None, body: object = None, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.retry_after = retry_after
        self.body = body
        self.outcome_unknown = outcome_unknown


def transient_cause(error: BaseException) -> str | None:
    """Why the failed call is worth another try, or None when it is not."""
    if isinstance(error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return f"connection lost ({type(error).__name__})"
    if isinstance(error, SalesforceRequestError):
        if error.error_code in TRANSIENT_ERROR_CODES or error.status in TRANSIENT_STATUSES:
            return " ".join(part for part in (f"HTTP {error.status}" if error.status else "", error.error_code or "")
                            if part)
    return None


def never_sent(error: BaseException) -> bool:
    """Whether a connection failure happened before the request reached the server (so resending is safe)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if isinstance(error, requests.ConnectionError) and error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def retry_after_seconds(header: str | None, *, now: datetime | None = None) -> float | None:
    """The Retry-After header in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter: attempt n waits about initial * 2**(n-1) (at most `max_seconds`)
    plus up to `jitter_seconds`, or the server's Retry-After when that is longer. A Retry-After beyond
    `max_retry_after_seconds` is not waited for: the call fails and the run is retried later."""

    attempts: int = 5
    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    jitter_seconds: float = 1.0
    max_retry_after_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def _should_retry(self, error: BaseException) -> bool:
        if transient_cause(error) is None:
            return False
        retry_after = getattr(error, "retry_after", None)
        return retry_after is None or retry_after <= self.max_retry_after_seconds

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = tenacity.wait_exponential_jitter(initial=self.initial_seconds, max=self.max_seconds,
                                                   jitter=self.jitter_seconds)(state)
        error = state.outcome.exception() if state.outcome else None
        return max(backoff, getattr(error, "retry_after", None) or 0.0)

    def call(self, name: str, function: Callable[[], T], *, log: logging.Logger | logging.LoggerAdapter) -> T:
        """`function()`, tried again on transient failures; each retry logs a warning naming `name` and the attempt."""

        def warn(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            cause = transient_cause(error) if error else None
            if not isinstance(error, SalesforceRequestError):  # a connection error: its own words say where
                cause = f"{cause}: {str(error)[:200]}"
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1f s", name, state.attempt_number,
                        self.attempts, cause, wait)

        retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(self.attempts), wait=self._wait,
                                     retry=tenacity.retry_if_exception(self._should_retry), before_sleep=warn,
                                     sleep=self.sleep, reraise=True)
        return retrying(function)


DEFAULT_RETRY_POLICY = RetryPolicy()
