"""``mcp-checkout store show|set``: the store profile (name, logo, policies, currency, locale, tax display)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mcp_checkout.cli.base import Commands, Context, add_command, add_group

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services
    from mcp_checkout.service.views import StoreProfileOut

# option → profile field (text fields; "" clears the optional ones)
TEXT_OPTIONS = {
    "--name": "name",
    "--logo-url": "logo_url",
    "--support-email": "support_email",
    "--terms-url": "terms_url",
    "--privacy-url": "privacy_url",
    "--returns-url": "returns_url",
    "--shipping-policy-url": "shipping_policy_url",
    "--origin-country": "origin_country",
    "--currency": "default_currency",
    "--locale": "locale",
}
FLAG_OPTIONS = {"--prices-include-tax": "prices_include_tax", "--discount-stacking": "allow_discount_stacking"}
_YES = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


def _yes_no(text: str) -> bool:
    try:
        return _YES[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r}: write yes or no") from None


def _print(profile: StoreProfileOut, as_json: bool) -> None:
    shown = profile.model_dump(mode="json")
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    width = max(len(field) for field in shown)
    for field, value in shown.items():
        print(f"{field:<{width}}  {'-' if value is None else value}")


def _show(context: Context) -> int:
    async def run(services: Services) -> StoreProfileOut:
        return await services.store_profile.get()

    _print(context.with_services(run), context.args.json)
    return 0


def _set(context: Context) -> int:
    from mcp_checkout.service.policy import OPERATOR

    args = context.args
    changes: dict[str, Any] = {
        field: getattr(args, field)
        for field in (*TEXT_OPTIONS.values(), *FLAG_OPTIONS.values())
        if getattr(args, field) is not None
    }
    if not changes:
        options = ", ".join([*TEXT_OPTIONS, *FLAG_OPTIONS])
        print(f"error: nothing to change. Give one or more of {options}.", file=sys.stderr)
        return 2

    async def run(services: Services) -> StoreProfileOut:
        return await services.store_profile.update(OPERATOR, changes)

    _print(context.with_services(run), args.json)
    return 0


def register(commands: Commands) -> None:
    store = add_group(
        commands,
        "store",
        help="show or change the store profile (name, policies, currency, tax display)",
        description="The store profile buyers see on the checkout page and agents read with get_store_profile: "
        "name, logo, support email, policy URLs, origin country, default currency, locale and whether prices "
        "include tax. Seeded from MCP_CHECKOUT_MERCHANT_NAME and MCP_CHECKOUT_DEFAULT_CURRENCY on first start; "
        "changes are recorded in the audit log.",
        examples=["mcp-checkout store show", "mcp-checkout store set --name 'Ada Ceramics' --prices-include-tax yes"],
    )
    show = add_command(
        store,
        "show",
        help="print the store profile",
        description="Print the store profile: name, policies, currency, locale and tax display.",
        examples=["mcp-checkout store show", "mcp-checkout store show --json"],
        handler=_show,
    )
    show.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    change = add_command(
        store,
        "set",
        help="change fields of the store profile",
        description="Change the given fields of the store profile; the others keep their values. An empty value "
        "(--logo-url '') clears an optional field. Recorded in the audit log.",
        examples=[
            "mcp-checkout store set --name 'Ada Ceramics' --support-email help@ada.example",
            "mcp-checkout store set --currency EUR --locale de_DE --prices-include-tax yes",
        ],
        handler=_set,
    )
    for option, field in TEXT_OPTIONS.items():
        change.add_argument(option, dest=field, metavar="TEXT" if field != "default_currency" else "CODE")
    for option, field in FLAG_OPTIONS.items():
        change.add_argument(option, dest=field, type=_yes_no, metavar="yes|no")
    change.add_argument("--json", action="store_true", help="print JSON (for scripts)")
