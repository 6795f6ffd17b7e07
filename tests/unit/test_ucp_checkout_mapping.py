"""How a UCP checkout's buyer, fulfillment and discounts become the native update_cart arguments (only what
the request carries is sent), and where native message paths point in a UCP checkout."""

from __future__ import annotations

import pytest

from mcp_checkout.ucp.checkout import _ucp_path, details_from
from mcp_checkout.ucp.negotiation import UcpProblem


def test_only_the_parts_a_request_carries_are_sent() -> None:
    assert details_from({"line_items": []}) is None
    details = details_from({"discounts": {"codes": []}})
    assert details is not None and tuple(details.sent) == ("discount_codes",) and details.discount_codes == []


def test_buyer_destination_and_selected_option_map_to_the_cart() -> None:
    details = details_from(
        {
            "buyer": {"email": "a@b.test", "first_name": "Ada", "last_name": "Lovelace", "phone_number": "+1"},
            "fulfillment": {
                "methods": [
                    {
                        "type": "shipping",
                        "destinations": [
                            {"id": "x", "street_address": "9 X St", "address_country": "DE"},
                            {"id": "home", "street_address": "1 Main St", "address_locality": "SF",
                             "postal_code": "94105", "address_country": "US", "address_region": "CA"},
                        ],
                        "selected_destination_id": "home",
                        "groups": [{"id": "g", "selected_option_id": "express"}],
                    }
                ]
            },
        }
    )  # fmt: skip
    assert details is not None
    assert details.buyer == {"email": "a@b.test", "name": "Ada Lovelace", "phone": "+1"}
    assert details.shipping_address is not None
    assert (details.shipping_address["name"], details.shipping_address["line1"]) == ("Ada Lovelace", "1 Main St")
    assert details.fulfillment_option_id == "express"
    assert set(details.sent) == {"buyer", "shipping_address", "fulfillment_option_id"}


def test_discount_codes_must_be_strings() -> None:
    with pytest.raises(UcpProblem):
        details_from({"discounts": {"codes": [1]}})


def test_native_paths_point_into_the_ucp_checkout() -> None:
    assert _ucp_path("shipping_address.country") == "$.fulfillment.methods[0].destinations[0].address_country"
    assert _ucp_path("fulfillment_option_id") == "$.fulfillment.methods[0].groups[0].selected_option_id"
    assert _ucp_path("discount_codes") == "$.discounts.codes"
    assert _ucp_path("buyer.email") == "$.buyer.email"
