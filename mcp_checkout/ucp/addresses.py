"""Names and postal addresses between the native model and UCP's shapes (``first_name``/``last_name``,
``street_address``, ``address_locality``…)."""

from __future__ import annotations

from typing import Any

from mcp_checkout.service.views import QuoteDestinationOut, ShippingAddressOut


def postal_address(address: ShippingAddressOut) -> dict[str, Any]:
    """A native shipping address as a UCP postal address."""
    out: dict[str, Any] = {
        **split_name(address.name),
        "street_address": address.line1,
        "address_locality": address.city,
        "postal_code": address.postal_code,
        "address_country": address.country,
    }
    if address.line2:
        out["extended_address"] = address.line2
    if address.region:
        out["address_region"] = address.region
    return out


def quoted_destination(destination: QuoteDestinationOut) -> dict[str, Any]:
    """A cart's quote destination (country; region, postal code if known) as a UCP postal address."""
    out: dict[str, Any] = {**split_name(destination.name), "address_country": destination.country}
    if destination.region:
        out["address_region"] = destination.region
    if destination.postal_code:
        out["postal_code"] = destination.postal_code
    return out


def cart_destination(address: ShippingAddressOut | None, quoted: QuoteDestinationOut | None) -> dict[str, Any] | None:
    """A cart's shipping destination as a UCP postal address: its full address, else its quote destination."""
    if address is not None:
        return postal_address(address)
    return quoted_destination(quoted) if quoted is not None else None


def split_name(name: str | None) -> dict[str, str]:
    if not name:
        return {}
    first, _, last = name.partition(" ")
    return {"first_name": first, **({"last_name": last} if last else {})}


def joined_name(part: dict[str, Any]) -> str | None:
    name = " ".join(str(part[k]).strip() for k in ("first_name", "last_name") if part.get(k))
    return name or None
