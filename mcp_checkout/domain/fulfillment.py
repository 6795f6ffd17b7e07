"""Shipments: which order lines a fulfilment ships, and whether the order is then fully shipped. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mcp_checkout.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class OrderedLine:
    line_no: int
    sku: str
    quantity: int
    fulfilled: int

    @property
    def left(self) -> int:
        return self.quantity - self.fulfilled


@dataclass(frozen=True, slots=True)
class ShippedLine:
    line_no: int
    sku: str
    quantity: int


def plan_shipment(
    order_ref: str, lines: Sequence[OrderedLine], requested: Sequence[tuple[str, int]] | None
) -> list[ShippedLine]:
    """The units a fulfilment ships, line by line: ``requested`` [(sku, quantity)], or None for everything
    not shipped yet. Never more of a SKU than was ordered minus what already shipped (InvalidInput)."""
    if requested is None:
        plan = [ShippedLine(line.line_no, line.sku, line.left) for line in lines if line.left > 0]
        if not plan:
            raise InvalidInput(f"Every item of order {order_ref} has shipped already.", next_actions=["get_order"])
        return plan
    skus = [sku for sku, _ in requested]
    if len(set(skus)) != len(skus):
        raise InvalidInput("Each SKU may appear once in lines; add the quantities together.")
    plan = []
    for sku, wanted in requested:
        of_sku = [line for line in lines if line.sku == sku]
        if not of_sku:
            raise InvalidInput(
                f"Order {order_ref} has no SKU {sku!r}. Call get_order for its lines.",
                details={"sku": sku},
                next_actions=["get_order"],
            )
        left = sum(line.left for line in of_sku)
        if wanted > left:
            raise InvalidInput(
                f"Only {left} of SKU {sku} in order {order_ref} are left to ship ({wanted} requested): "
                f"{sum(line.quantity for line in of_sku)} ordered, {sum(line.fulfilled for line in of_sku)} shipped.",
                details={"sku": sku, "left": left, "requested": wanted},
                next_actions=["get_order"],
            )
        to_ship = wanted
        for line in of_sku:  # fill lines of the SKU in order
            take = min(to_ship, line.left)
            if take > 0:
                plan.append(ShippedLine(line.line_no, sku, take))
                to_ship -= take
    return plan


def fully_shipped(lines: Sequence[OrderedLine], shipment: Sequence[ShippedLine]) -> bool:
    """Whether every unit of the order has shipped once ``shipment`` is counted."""
    now_shipped = {line.line_no: line.fulfilled for line in lines}
    for shipped in shipment:
        now_shipped[shipped.line_no] += shipped.quantity
    return all(now_shipped[line.line_no] >= line.quantity for line in lines)
