"""``mcp-checkout keys``: API keys for remote MCP clients (``serve --http``)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from mcp_checkout.cli.base import Commands, Context, add_command, add_group
from mcp_checkout.cli.buyer_data import rotate_secret

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services


def _keys(context: Context) -> int:
    args = context.args

    async def run(services: Services) -> int:
        if args.keys_command == "create":
            created = await services.access.create_key(args.name, args.scope, args.expires_in_days)
            print(created.key)  # the secret goes to stdout (pipe it into a secret store), once
            print(
                f"created {created.info.scope} key {created.info.prefix} ({created.info.name!r}); "
                "this is the only time the key is shown",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            keys = await services.access.list_keys()
            if args.json:
                print(json.dumps([key.model_dump(mode="json") for key in keys], indent=2))
            else:
                if not keys:
                    print("no API keys yet: create one with `mcp-checkout keys create --name … --scope …`",
                          file=sys.stderr)  # fmt: skip
                for key in keys:
                    made = key.created_at.isoformat(timespec="seconds")
                    used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
                    expires = key.expires_at.isoformat(timespec="seconds") if key.expires_at else "never"
                    row = f"{key.prefix:<24} {key.scope:<8} {key.status:<7} created {made}"
                    print(f"{row} used {used} expires {expires} {key.name}")
        elif args.keys_command == "rotate-secret":
            return await rotate_secret(services, args.batch_size)
        elif args.keys_command in ("signing", "rotate-signing", "retire-signing"):
            return await _signing(services, args.keys_command, getattr(args, "kid", None))
        else:
            revoked = await services.access.revoke(args.key)
            print(f"revoked {revoked.prefix} ({revoked.name!r})", file=sys.stderr)
        return 0

    return context.with_services(run)


async def _signing(services: Services, command: str, kid: str | None) -> int:
    """The business's message-signing keys (UCP order webhooks; published in /.well-known/ucp)."""
    from mcp_checkout.service.policy import OPERATOR

    if command == "rotate-signing":
        await services.signing_keys.ensure()
        print(await services.signing_keys.rotate(OPERATOR))  # the new key's kid
        print("the new key signs from now on; keep the old one published 7 days, then retire it", file=sys.stderr)
    elif command == "retire-signing":
        assert kid is not None
        await services.signing_keys.retire(OPERATOR, kid)
        print(f"retired signing key {kid}: no longer published", file=sys.stderr)
    else:
        await services.signing_keys.ensure()
        for key in await services.signing_keys.listing():
            retired = key["retired_at"].isoformat(timespec="seconds") if key["retired_at"] else "-"
            print(f"{key['kid']}  {key['status']:<7} created {key['created_at'].isoformat(timespec='seconds')} "
                  f"retired {retired}")  # fmt: skip
    return 0


def register(commands: Commands) -> None:
    keys = add_group(
        commands,
        "keys",
        help="API keys for remote MCP clients (serve --http)",
        description="API keys for clients of `mcp-checkout serve --http`: each is a bearer token for /mcp with "
        "a scope (buyer: shop and pay; merchant: everything) and a per-minute budget. Only a hash is "
        "stored; the key is printed once, at creation.",
        examples=[
            'mcp-checkout keys create --name "storefront agent" --scope buyer',
            'mcp-checkout keys create --name "back office" --scope merchant --expires-in-days 90',
            "mcp-checkout keys list",
            "mcp-checkout keys revoke mcpk_3f9a…",
            "mcp-checkout keys rotate-secret",
            "mcp-checkout keys signing",
            "mcp-checkout keys rotate-signing",
        ],
    )
    create = add_command(
        keys,
        "create",
        help="create a key and print it once",
        description="Create an API key. The key goes to stdout (pipe it into your secret store); it is never "
        "shown again.",
        examples=['mcp-checkout keys create --name "storefront agent" --scope buyer'],
        handler=_keys,
    )
    create.add_argument("--name", required=True, help="who uses it, e.g. 'storefront agent'")
    create.add_argument("--scope", choices=["buyer", "merchant"], required=True, help="what the key may do")
    create.add_argument("--expires-in-days", type=int, default=None, help="default: never expires")
    listing = add_command(
        keys,
        "list",
        help="names, scopes, prefixes, last use and expiry; never secrets",
        description="List the API keys: prefix, scope, status, creation, last use, expiry and name. Never secrets.",
        examples=["mcp-checkout keys list", "mcp-checkout keys list --json"],
        handler=_keys,
    )
    listing.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    revoke = add_command(
        keys,
        "revoke",
        help="revoke a key at once (by key id or prefix)",
        description="Revoke an API key. Its next request is refused.",
        examples=["mcp-checkout keys revoke mcpk_3f9a…"],
        handler=_keys,
    )
    revoke.add_argument("key", help="the key id or prefix from `keys list`")
    rotate = add_command(
        keys,
        "rotate-secret",
        help="re-seal buyer data and webhook secrets with the newest secret key",
        description="Re-seal every sealed value (buyer emails, names and addresses, webhook bodies and signing "
        "secrets) with the newest key of MCP_CHECKOUT_SECRET_KEY (keys separated by commas, newest first) or "
        "<data dir>/secret.key (one a line, newest first). Works in batches, each its own transaction: safe to "
        "stop and run again. Afterwards the older keys can be removed.",
        examples=["mcp-checkout keys rotate-secret", "mcp-checkout keys rotate-secret --batch-size 200"],
        handler=_keys,
    )
    rotate.add_argument("--batch-size", type=int, default=500, choices=range(1, 10_001), metavar="1-10000")
    add_command(
        keys,
        "signing",
        help="the business's message-signing keys (UCP order webhooks): kid, status, dates",
        description="List the ES256 keys that sign UCP order webhooks (RFC 9421); the active ones are published "
        "as signing_keys in /.well-known/ucp, the newest signs. Private halves are sealed and never shown. "
        "The first key is made on first use.",
        examples=["mcp-checkout keys signing"],
        handler=_keys,
    )
    add_command(
        keys,
        "rotate-signing",
        help="make a new signing key (it signs from now on; the old one stays published)",
        description="Add a new signing key: it signs every webhook from now on, the older keys stay published "
        "so platforms still verify what they signed. Retire the old one after a grace period (7 days).",
        examples=["mcp-checkout keys rotate-signing"],
        handler=_keys,
    )
    retire = add_command(
        keys,
        "retire-signing",
        help="stop publishing a signing key (never the last one)",
        description="Remove a signing key from /.well-known/ucp (after rotation and a grace period, or at once "
        "if it leaked). The last active key cannot be retired: rotate first.",
        examples=["mcp-checkout keys retire-signing es256-9oOUvMQ3…"],
        handler=_keys,
    )
    retire.add_argument("kid", help="the kid from `keys signing`")
