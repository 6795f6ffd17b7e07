"""Email-locked checkout links: the proof of the email is bound to the browser that gave it (a signed,
HttpOnly, SameSite cookie for that link's session), and guesses are throttled per link in the database.

Each browser is its own httpx client (its own cookie jar) on the real web app; the link is minted through
a real MCP client; every services instance here could be another server process on the same database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeClock
from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.email_proof import ATTEMPTS
from mcp_checkout.web.app import EMAIL_PROOF_COOKIE, build_web_app

BASE = "http://shop.test"
EMAIL = "ann@example.com"


class Shop:
    def __init__(self, settings: Settings, db: Any, clock: FakeClock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.built: list[Services] = []

    def process(self) -> Services:
        """Services as another server process on the same database would build them."""
        self.built.append(build_services(self.settings, db=self.db, clock=self.clock))
        return self.built[-1]

    def browser(self, services: Services, base: str = BASE) -> httpx.AsyncClient:
        app = build_web_app(lambda: services)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)

    async def locked_link(self, services: Services, key: str) -> str:
        async with Client(build_server(self.settings, services=services)) as client:
            result = await client.call_tool(
                "create_checkout_link", {"sku": "MUG-01", "quantity": 1, "idempotency_key": key, "email": EMAIL}
            )
        assert not result.is_error, result.content[0].text
        return str(result.structured_content["url"])[len(BASE) :]


@pytest.fixture
async def shop(settings: Settings, seeded: Services, fake_clock: FakeClock) -> AsyncIterator[Shop]:
    built = Shop(settings.model_copy(update={"public_base_url": BASE}), seeded.db, fake_clock)
    yield built
    for services in built.built:
        await services.webhooks.close()  # the database is seeded's: it closes it


async def _csrf(browser: httpx.AsyncClient, path: str) -> str:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def _prove(browser: httpx.AsyncClient, path: str, email: str = EMAIL) -> httpx.Response:
    return await browser.post(path + "/email", data={"csrf": await _csrf(browser, path), "email": email})


async def _page(browser: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await browser.get(path, headers={"accept": "application/json"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_another_browser_with_the_url_must_still_prove_the_email(shop: Shop) -> None:
    services = shop.process()
    path = await shop.locked_link(services, "two-browsers")
    async with shop.browser(services) as buyer, shop.browser(shop.process()) as other:
        proved = await _prove(buyer, path)
        assert proved.status_code == 303
        cookie = proved.headers["set-cookie"]
        assert cookie.startswith(f"{EMAIL_PROOF_COOKIE}=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", f"path={path}".lower()} <= attributes
        assert "secure" not in attributes  # plain http (localhost testing): a Secure cookie would never come back
        assert (await _page(buyer, path))["email_required"] is False

        # Same link, another browser (another process too): the buyer's proof is not its proof.
        assert (await _page(other, path))["email_required"] is True
        csrf = await _csrf(other, path)
        refused = await other.post(path + "/pay", data={"csrf": csrf}, headers={"accept": "application/json"})
        assert refused.status_code == 403 and refused.json()["error"] == "email_mismatch"

        # A proof cookie is not something a browser can make up or carry to another link.
        forged = buyer.cookies[EMAIL_PROOF_COOKIE]
        session, expiry, tag = forged.split(".")
        for fake in (
            f"{session}.{int(expiry) + 86_400}.{tag}",
            f"{session}.{expiry}.{tag[:-2]}AA",
            f"{session}.{expiry}",
        ):
            other.cookies.set(EMAIL_PROOF_COOKIE, fake, domain="shop.test", path=path)
            assert (await _page(other, path))["email_required"] is True
            other.cookies.clear()
        second = await shop.locked_link(services, "another-link")
        other.cookies.set(EMAIL_PROOF_COOKIE, forged, domain="shop.test", path=second)
        assert (await _page(other, second))["email_required"] is True

        paid = await buyer.post(path + "/pay", data={"csrf": await _csrf(buyer, path)})
        assert paid.status_code == 303, paid.text


async def test_the_proof_cookie_is_secure_on_https(shop: Shop) -> None:
    services = shop.process()
    path = await shop.locked_link(services, "https")
    async with shop.browser(services, base="https://shop.test") as buyer:
        proved = await _prove(buyer, path)
        assert proved.status_code == 303
        assert "secure" in {part.strip().lower() for part in proved.headers["set-cookie"].split(";")}


async def test_email_guesses_are_throttled_per_link_across_processes(shop: Shop) -> None:
    first, second = shop.process(), shop.process()
    path = await shop.locked_link(first, "guesses")
    untouched = await shop.locked_link(first, "untouched")
    async with shop.browser(first) as attacker, shop.browser(second) as elsewhere, shop.browser(first) as buyer:
        csrf = await _csrf(attacker, path)
        answers: list[httpx.Response] = []

        async def guess(number: int) -> None:
            answers.append(
                await attacker.post(
                    path + "/email",
                    data={"csrf": csrf, "email": f"guess{number}@example.com"},
                    headers={"accept": "application/json"},
                )
            )

        async with anyio.create_task_group() as tasks:  # a burst: no read-then-write race lets more through
            for number in range(3 * ATTEMPTS):
                tasks.start_soon(guess, number)
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [403] * ATTEMPTS + [429] * (2 * ATTEMPTS), codes
        limited = next(answer for answer in answers if answer.status_code == 429)
        assert limited.json()["error"] == "rate_limited" and "Too many email attempts" in limited.json()["message"]
        assert re.search(r"wait \d+ minute", limited.json()["message"])
        assert 0 < int(limited.headers["retry-after"]) <= 15 * 60

        # The count lives in the database: another process refuses too, even the right email, and says so.
        refused = await _prove(elsewhere, path)
        assert refused.status_code == 429 and "Too many email attempts" in refused.text
        # Other links are not affected.
        assert (await _prove(buyer, untouched)).status_code == 303

        shop.clock.advance(minutes=16)
        assert (await _prove(buyer, path)).status_code == 303
