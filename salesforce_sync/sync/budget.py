"""The API budget governor's arithmetic (no I/O): how many calls a sync window or a health check will make,
and whether the org's DailyApiRequests leave room for them under an integration's `api_budget_percent`.

The usage compared is the org's (Sforce-Limit-Info reports every caller's calls), so integrations that share an
org share its budget: each one stops where its own percentage of the org's quota would be passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Status polls a Bulk 2.0 query job usually needs before it completes (the estimate; a job may need more).
BULK_POLLS_ESTIMATE = 3


def window_calls(expected: int, *, use_bulk: bool, rest_page_size: int, bulk_page_size: int) -> int:
    """API calls a window of `expected` records costs after its COUNT(): REST pages, or a Bulk job's create,
    status polls, result pages and delete."""
    if expected < 0:
        raise ValueError(f"a record count cannot be negative, got {expected}")
    if use_bulk:
        return 1 + BULK_POLLS_ESTIMATE + max(1, math.ceil(expected / bulk_page_size)) + 1
    return max(1, math.ceil(expected / rest_page_size))


def describe_calls(paths: tuple[str, ...]) -> int:
    """Describe calls a mapping check costs: the object itself and each relationship its paths start with."""
    return 1 + len({path.split(".", 1)[0].lower() for path in paths if "." in path})


@dataclass(frozen=True)
class ApiBudget:
    """An org's DailyApiRequests usage against an integration's budget: at most `percent` of `maximum` used."""

    used: int
    maximum: int
    percent: int

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise ValueError(f"api_budget_percent must be 1..100, got {self.percent}")

    @property
    def ceiling(self) -> int:
        """The most calls of the day the budget allows the org to have used."""
        return self.maximum * self.percent // 100

    @property
    def room(self) -> int:
        return max(0, self.ceiling - self.used)

    def allows(self, calls: int) -> bool:
        return self.used + calls <= self.ceiling

    def describe(self, calls: int, what: str) -> str:
        """One sentence: the usage, what `calls` would bring it to, and the budget."""
        return (f"{what} needs about {calls} API calls; the org has used {self.used} of {self.maximum} daily API "
                f"requests and the budget of {self.percent}% allows {self.ceiling} ({self.room} left)")
