"""success_url / cancel_url are parsed strictly when a link is made, and the checkout page's
Content-Security-Policy is built only from their parsed scheme, host and port."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp import Client
from sqlalchemy import text

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.web.app import build_web_app

BASE = "http://shop.test"
BAD = [
    "https://a.example;sandbox",
    "https://a.example;sandbox/",
    "https://a.example,https://evil.example/",
    "https://a.example 'unsafe-inline'/",
    "https://user:pw@a.example/thanks",
    "https://a.example:99999/",
    "https://a.example:80:81/",
    "https://-a.example/",
    "https://a.example%3Bsandbox/",
    "http://[::1%25eth0]/",
]


def _link_args(key: str, **urls: str) -> dict[str, Any]:
    return {"sku": "MUG-01", "quantity": 1, "idempotency_key": key, **urls}


@pytest.fixture
def shop(settings: Settings, seeded: Services) -> tuple[Any, Services]:
    shop_settings = settings.model_copy(update={"public_base_url": BASE})
    services = build_services(shop_settings, db=seeded.db)
    return build_server(shop_settings, services=services), services


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_a_redirect_url_beyond_scheme_host_and_port_is_invalid_input_naming_the_field(
    shop: tuple[Any, Services], field: str
) -> None:
    server, _ = shop
    async with Client(server) as client:
        for number, url in enumerate(BAD):
            result = await client.call_tool("create_checkout_link", _link_args(f"{field}-{number}", **{field: url}))
            assert result.is_error, url
            text_ = result.content[0].text
            assert text_.startswith("[invalid_input]") and field in text_, (url, text_)


async def test_the_csp_holds_only_the_parsed_origins(shop: tuple[Any, Services]) -> None:
    server, services = shop
    async with Client(server) as client:
        good = await client.call_tool(
            "create_checkout_link",
            _link_args("good", success_url="https://Shop.Example:8443/thanks?a=1,2", cancel_url="http://127.0.0.1:9/c"),
        )
        assert not good.is_error, good.content[0].text
        stale = await client.call_tool("create_checkout_link", _link_args("stale", success_url="https://ok.example/"))
        assert not stale.is_error
    # A link stored before URLs were checked this strictly (written straight into the database).
    stale_id = stale.structured_content["link_id"]
    await services.db.write(
        lambda conn: conn.execute(
            text("update checkout_links set success_url = :url where id = :id"),
            {"url": "https://a.example;sandbox allow-forms,https://evil.example", "id": stale_id},
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_web_app(lambda: services)), base_url=BASE
    ) as web:
        page = await web.get(good.structured_content["url"][len(BASE) :])
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "form-action 'self' https://shop.example:8443 http://127.0.0.1:9;" in csp, csp
        page = await web.get(stale.structured_content["url"][len(BASE) :])
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "form-action 'self';" in csp and "sandbox" not in csp and "evil" not in csp, csp
        assert [part.split()[0] for part in csp.split("; ")].count("form-action") == 1
