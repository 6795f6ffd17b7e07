"""Which statuses an order can still reach: what lets wait_for_order stop early instead of timing out."""

from __future__ import annotations

from mcp_checkout.domain import OrderStatus, reachable_statuses

S = OrderStatus


def test_an_unpaid_order_can_still_become_anything() -> None:
    assert reachable_statuses(S.PENDING_PAYMENT) == frozenset(S)


def test_paid_orders_can_only_move_on_to_shipped_refunded_or_canceled_by_the_merchant() -> None:
    assert reachable_statuses(S.PAID) == {S.PAID, S.PARTIALLY_FULFILLED, S.FULFILLED, S.REFUNDED, S.CANCELED}
    assert reachable_statuses(S.PARTIALLY_FULFILLED) == {S.PARTIALLY_FULFILLED, S.FULFILLED, S.REFUNDED}
    assert reachable_statuses(S.FULFILLED) == {S.FULFILLED, S.REFUNDED}


def test_final_states_reach_only_themselves() -> None:
    for final in (S.CANCELED, S.EXPIRED, S.REFUNDED):
        assert reachable_statuses(final) == {final}
