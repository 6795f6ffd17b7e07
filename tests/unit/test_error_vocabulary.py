"""The error vocabulary: one stable, unique, snake_case code per error class."""

from __future__ import annotations

import re

from mcp_checkout import errors
from mcp_checkout.errors import CheckoutError, all_error_types

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
WHO_FIXES = {"agent", "buyer", "merchant", "retry", "operator"}


def test_all_error_types_finds_every_error_class_in_the_module() -> None:
    declared = {
        value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, CheckoutError)
    }
    assert set(all_error_types()) == declared
    assert len(declared) > 15


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in all_error_types()]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    assert duplicates == []


def test_codes_are_snake_case() -> None:
    bad = [cls.code for cls in all_error_types() if not SNAKE.match(cls.code)]
    assert bad == []


def test_every_class_declares_its_own_code() -> None:
    inherited = [cls.__name__ for cls in all_error_types() if "code" not in vars(cls)]
    assert inherited == []


def test_classification_is_complete() -> None:
    for cls in all_error_types():
        assert isinstance(cls.retryable, bool), cls.__name__
        assert cls.who_fixes in WHO_FIXES, cls.__name__
        assert 400 <= cls.http_status <= 599, cls.__name__
        if cls.retryable:
            assert cls.who_fixes in ("retry", "operator"), f"{cls.__name__} is retryable but says {cls.who_fixes}"


def test_the_codes_agents_rely_on_exist() -> None:
    codes = {cls.code for cls in all_error_types()}
    assert {
        "invalid_input",
        "invalid_cursor",
        "sku_not_found",
        "product_not_found",
        "cart_not_found",
        "order_not_found",
        "currency_mismatch",
        "insufficient_stock",
        "cart_empty",
        "cart_not_open",
        "cart_already_ordered",
        "idempotency_conflict",
        "idempotency_in_flight",
        "invalid_state",
        "storage_unavailable",
        "internal_error",
    } <= codes
    retryable = {cls.code for cls in all_error_types() if cls.retryable}
    assert {"idempotency_in_flight", "storage_unavailable", "storage_busy", "internal_error"} <= retryable
    assert "idempotency_conflict" not in retryable


def test_to_dict_carries_what_a_client_needs() -> None:
    for cls in all_error_types():
        body = cls("Something happened. Call get_order.", details={"x": 1}, retry_after_seconds=2).to_dict()
        assert body["code"] == cls.code
        assert body["retryable"] is cls.retryable
        assert body["who_fixes"] == cls.who_fixes
        assert body["details"] == {"x": 1}
        assert body["retry_after_seconds"] == 2
