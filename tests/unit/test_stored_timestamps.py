"""Timestamps on SQLite are stored as SQLAlchemy's DATETIME writes them (naive UTC text), whatever path binds
them: rows written before and after the one-step bind compare and sort alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from mcp_checkout.store.models import Timestamp

SQLITE = sqlite.dialect()
SQLALCHEMY_TEXT = DateTime()._cached_bind_processor(SQLITE)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 3, 7, 52, 37, 277077, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: still written with six digits
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),  # a year below 1000: four digits
        datetime(2026, 1, 1, 5, 0, 0, 7, tzinfo=timezone(timedelta(hours=5))),  # another offset: turned into UTC
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    ],
)
def test_a_timestamp_is_stored_as_sqlalchemys_naive_utc_text(value: datetime) -> None:
    assert SQLALCHEMY_TEXT is not None
    stored = Timestamp._cached_bind_processor(SQLITE)
    assert stored is not None
    expected = SQLALCHEMY_TEXT(value.astimezone(UTC).replace(tzinfo=None))
    assert stored(value) == expected
    assert Timestamp._cached_result_processor(SQLITE, None)(expected) == value  # type: ignore[misc]


def test_a_naive_timestamp_is_refused_and_none_stays_none() -> None:
    stored = Timestamp._cached_bind_processor(SQLITE)
    assert stored is not None
    with pytest.raises(ValueError, match="naive datetime"):
        stored(datetime(2026, 1, 1))
    assert stored(None) is None


def test_postgresql_gets_the_aware_datetime_unchanged() -> None:
    value = datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    bind = Timestamp._cached_bind_processor(postgresql.dialect())  # type: ignore[no-untyped-call]
    assert (bind(value) if bind is not None else value) == value
