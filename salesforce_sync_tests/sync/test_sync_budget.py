"""The API budget governor's arithmetic, without I/O: calls a window costs over REST or Bulk, describe calls a
mapping check costs, and whether an org's usage leaves room under a budget."""

from __future__ import annotations

import pytest

from salesforce_sync.sync.budget import BULK_POLLS_ESTIMATE, ApiBudget, describe_calls, window_calls


@pytest.mark.parametrize("expected, calls", [(0, 1), (1, 1), (2000, 1), (2001, 2), (10_000, 5)])
def test_a_rest_window_costs_one_call_per_page(expected: int, calls: int) -> None:
    assert window_calls(expected, use_bulk=False, rest_page_size=2000, bulk_page_size=50_000) == calls


@pytest.mark.parametrize("expected, pages", [(0, 1), (50_000, 1), (50_001, 2), (1_000_000, 20)])
def test_a_bulk_window_costs_create_polls_result_pages_and_delete(expected: int, pages: int) -> None:
    assert window_calls(expected, use_bulk=True, rest_page_size=2000, bulk_page_size=50_000) == (
        1 + BULK_POLLS_ESTIMATE + pages + 1)


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative, got -1"):
        window_calls(-1, use_bulk=False, rest_page_size=2000, bulk_page_size=50_000)


def test_a_mapping_check_describes_the_object_and_each_relationship_once() -> None:
    assert describe_calls(("Email", "Company")) == 1
    assert describe_calls(("Email", "Account.Name", "account.Owner.Email", "Owner.Email")) == 3


def test_the_budget_ceiling_is_the_percentage_of_the_daily_maximum() -> None:
    budget = ApiBudget(used=13_490, maximum=15_000, percent=90)
    assert (budget.ceiling, budget.room) == (13_500, 10)
    assert budget.allows(10) and not budget.allows(11)
    assert ApiBudget(used=14_000, maximum=15_000, percent=90).room == 0
    assert budget.describe(11, "the Lead window") == (
        "the Lead window needs about 11 API calls; the org has used 13490 of 15000 daily API requests and the "
        "budget of 90% allows 13500 (10 left)")


@pytest.mark.parametrize("percent", [0, 101])
def test_a_budget_outside_one_to_a_hundred_percent_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match=f"api_budget_percent must be 1..100, got {percent}"):
        ApiBudget(used=0, maximum=100, percent=percent)
