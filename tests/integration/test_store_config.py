"""The store's configuration through a real MCP client, on SQLite and PostgreSQL: the store profile (seeded
from the settings on first start, readable by anyone, changed only by the merchant, audited), with clear
errors for unusable values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import store_profile as profile_store

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


def error(result: Any) -> tuple[str, str]:
    """(code, message) of a failed tool call; never a traceback or SQL."""
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    text = str(result.content[0].text)
    assert text.startswith("[") and "Traceback" not in text and "SELECT" not in text and "INSERT" not in text, text
    return json.loads(result.content[1].text)["error"]["code"], text


def buyer_server(settings: Settings) -> Any:
    return build_server(settings.model_copy(update={"local_principal_kind": "buyer", "local_principal_id": "b1"}))


# ---------------------------------------------------------------- store profile
async def test_the_profile_is_seeded_from_the_settings_on_first_start_and_kept_after(settings: Settings) -> None:
    named = settings.model_copy(update={"merchant_name": "Ada Ceramics", "default_currency": "EUR"})
    async with Client(build_server(named)) as client:
        profile = data(await client.call_tool("get_store_profile", {}))
        assert (profile["name"], profile["default_currency"], profile["prices_include_tax"]) == (
            "Ada Ceramics",
            "EUR",
            False,
        )
        data(await client.call_tool("update_store_profile", {"name": "Ada & Co"}))
    services = build_services(named.model_copy(update={"merchant_name": "Other"}))
    try:
        stored = await services.db.read(profile_store.get)
        assert stored is not None and stored.name == "Ada & Co" and stored.default_currency == "EUR"
        await services.prepare_database()  # a second start (or another process) seeds nothing over it
        assert (await services.store_profile.get()).name == "Ada & Co"
    finally:
        await services.close()


async def test_the_merchant_changes_the_profile_and_every_change_is_audited(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        changed = data(
            await client.call_tool(
                "update_store_profile",
                {
                    "name": "  Ada Ceramics ",
                    "logo_url": "https://ada.example/logo.png",
                    "support_email": "help@ada.example",
                    "terms_url": "https://ada.example/terms",
                    "returns_url": "https://ada.example/returns",
                    "origin_country": "de",
                    "default_currency": "EUR",
                    "locale": "de-DE",
                    "prices_include_tax": True,
                    "allow_discount_stacking": True,
                },
            )
        )
        assert changed["name"] == "Ada Ceramics" and changed["origin_country"] == "DE"
        assert changed["locale"] == "de_DE" and changed["prices_include_tax"] is True
        assert changed["privacy_url"] is None  # not given: unchanged
        cleared = data(await client.call_tool("update_store_profile", {"logo_url": "", "support_email": ""}))
        assert cleared["logo_url"] is None and cleared["support_email"] is None and cleared["name"] == "Ada Ceramics"
        same = data(await client.call_tool("update_store_profile", {"name": "Ada Ceramics"}))
        assert same == cleared
        events = data(await client.call_tool("list_audit_events", {"action": "store_profile.update"}))["events"]
    assert len(events) == 2  # the unchanged name wrote no event
    assert events[0]["before"] == {"logo_url": "https://ada.example/logo.png", "support_email": "help@ada.example"}
    assert events[0]["after"] == {"logo_url": None, "support_email": None}
    assert events[1]["before"]["name"] == "Demo Store" and events[1]["after"]["name"] == "Ada Ceramics"
    assert events[1]["actor"] == "merchant" and events[1]["target"] == "store_profile"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"logo_url": "ftp://ada.example/logo.png"}, "logo_url"),
        ({"terms_url": "not a url"}, "terms_url"),
        ({"support_email": "help-at-example"}, "support_email"),
        ({"origin_country": "XX"}, "origin_country"),
        ({"default_currency": "ABC"}, "default_currency"),
        ({"locale": "xx_QQ"}, "locale"),
        ({"name": "   "}, "name"),
        ({"name": "Ada\x07"}, "name"),
    ],
)
async def test_unusable_profile_values_are_refused_naming_the_field(
    settings: Settings, arguments: dict[str, Any], names: str
) -> None:
    async with Client(build_server(settings)) as client:
        code, text = error(await client.call_tool("update_store_profile", arguments))
        assert code == "invalid_input" and names in text
        assert data(await client.call_tool("get_store_profile", {}))["name"] == "Demo Store"  # nothing changed


@SQLITE_ONLY
async def test_schema_bounds_refuse_wrong_types_before_the_service(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        code, _ = error(await client.call_tool("update_store_profile", {"prices_include_tax": "yes"}))
        assert code == "invalid_input"
        code, _ = error(await client.call_tool("update_store_profile", {"logo_url": "https://x/" + "a" * 3000}))
        assert code == "invalid_input"


async def test_buyers_read_the_profile_but_cannot_change_it(settings: Settings, services: Services) -> None:
    async with Client(buyer_server(settings)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert "get_store_profile" in listed and "update_store_profile" not in listed
        assert data(await client.call_tool("get_store_profile", {}))["name"] == "Demo Store"
        code, text = error(await client.call_tool("update_store_profile", {"name": "Mine now"}))
        assert code == "forbidden" and "merchant" in text
    assert (await services.store_profile.get()).name == "Demo Store"
