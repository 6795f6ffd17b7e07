"""Prompts that walk a model through the common flows with the right tools in the right order."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer


def register(server: MCPServer[Any]) -> None:
    @server.prompt(title="Guided checkout")
    def guided_checkout(request: str = "", merchant_reference_id: str = "") -> str:
        """Help a buyer find items and place one order safely."""
        reference = (
            f"Use merchant_reference_id {merchant_reference_id!r} on create_order."
            if merchant_reference_id
            else "If the buyer or merchant gave a reference, pass it as merchant_reference_id."
        )
        return (
            "You are helping a buyer purchase from this store.\n"
            f"The buyer asked: {request or '(ask what they are looking for)'}\n\n"
            "1. search_catalog with the buyer's own words; show a few matches with price and availability.\n"
            "2. get_product to confirm the exact variant (SKU) before adding it.\n"
            "3. create_cart once, then add_to_cart per item (update_cart_item to change a quantity).\n"
            "4. get_cart and read the totals back to the buyer; ask for confirmation.\n"
            "5. create_order(cart_id=..., idempotency_key=<one new UUID for this order>). "
            "If the call times out or returns a retryable error, call it again with the SAME key and "
            "arguments: you will get the same order (replayed: true), never a duplicate.\n"
            f"6. {reference}\n"
            "Prices are integer minor units (cents): 1999 means 19.99. Never state a price you did not "
            "read from a tool result. On insufficient_stock, tell the buyer how many are left and offer "
            "to adjust the quantity."
        )

    @server.prompt(title="Order follow-up")
    def order_followup(order_id: str = "", merchant_reference_id: str = "") -> str:
        """Check on an existing order and explain its state to the buyer."""
        how = (
            f"Call get_order(order_id={order_id!r})."
            if order_id
            else f"Call lookup_orders(merchant_reference_id={merchant_reference_id!r}, allow_missing=true)."
            if merchant_reference_id
            else "Ask for the order id (ord_…) or the reference, then call get_order or lookup_orders."
        )
        return (
            f"A buyer asks about an order. {how}\n"
            "Explain the status in plain words: pending_payment (waiting for payment; mention expires_at), "
            "paid, partially_fulfilled (some items shipped), fulfilled (shipped; see fulfillments), canceled, "
            "expired (stock was released; a new order is needed), refunded.\n"
            "Use status_history to say what happened and when. If the buyer wants to cancel an unpaid "
            "order, confirm first, then call cancel_order. Never create a new order to 'fix' an old one "
            "without the buyer's confirmation."
        )
