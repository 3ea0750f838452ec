"""The inbox and the dashboard read their day range the same way, each with its own default."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.staff.dashboard_pages import Filter
from bot.staff.review_pages import InboxFilter

TODAY = dt.date(2026, 12, 1)


def test_the_inbox_shows_a_week_and_the_dashboard_a_month_by_default() -> None:
    assert InboxFilter.from_query({}, TODAY).date_from == dt.date(2026, 11, 25)
    dashboard = Filter.from_query({}, TODAY)
    assert dashboard.date_from == dt.date(2026, 11, 2)
    # Beijing days: the range starts and ends at Beijing midnight (16:00 UTC the day before)
    assert dashboard.span.since == dt.datetime(2026, 11, 1, 16, 0)
    assert dashboard.span.until == dt.datetime(2026, 12, 1, 16, 0)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"from": "2026-12-01", "to": "2026-11-01"}, "开始日期不能晚于结束日期"),
        ({"from": "2025-01-01", "to": "2026-11-01"}, "日期范围不能超过366天"),
        ({"from": "1.1.2026"}, "日期格式应为 YYYY-MM-DD"),
    ],
)
def test_a_bad_range_is_refused_with_the_reason(query: dict[str, str], reason: str) -> None:
    for kind in (InboxFilter, Filter):
        with pytest.raises(ValueError, match=reason):
            kind.from_query(query, TODAY)
