"""OAuth state lives in the database, so racing exchanges (two workers, two tabs, an attacker replaying a
stolen token) have exactly one winner, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from mcp_checkout.errors import OAuthInvalidGrant
from mcp_checkout.service.container import Services
from mcp_checkout.service.oauth import AuthorizationRequest, IssuedTokens, Redirect

REDIRECT = "http://127.0.0.1:33418/callback"


async def _tokens(services: Services) -> IssuedTokens:
    oauth = services.oauth
    await oauth.register_client("race-client", {"redirect_uris": [REDIRECT], "client_name": "race"}, None)
    pending = await oauth.begin(AuthorizationRequest("race-client", REDIRECT, True, ["buyer"], "s", "challenge", None))
    assert isinstance(pending, str)
    one_time, _ = await oauth.create_approval_code()
    redirect = await oauth.approve(pending, one_time)
    assert isinstance(redirect, Redirect)
    grant = await oauth.load_code("race-client", redirect.params["code"])
    assert grant is not None
    return await oauth.exchange_code(grant)


async def _race(count: int, attempt: Callable[[], Awaitable[object]]) -> list[object]:
    outcomes: list[object] = []

    async def one() -> None:
        try:
            outcomes.append(await attempt())
        except OAuthInvalidGrant as refused:
            outcomes.append(refused)

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(one)
    return outcomes


async def test_concurrent_refreshes_of_one_token_have_one_winner_and_revoke_the_family(services: Services) -> None:
    oauth = services.oauth
    tokens = await _tokens(services)
    grant = await oauth.load_refresh("race-client", tokens.refresh_token)
    assert grant is not None

    outcomes = await _race(8, lambda: oauth.exchange_refresh(grant, ["buyer"]))

    winners = [outcome for outcome in outcomes if isinstance(outcome, IssuedTokens)]
    assert len(winners) == 1 and len(outcomes) == 8
    # The losers were replays of a used token: the whole family, the winner's new tokens included, is revoked.
    assert await oauth.authenticate(winners[0].access_token) is None
    assert await oauth.authenticate(tokens.access_token) is None


async def test_concurrent_exchanges_of_one_code_have_one_winner(services: Services) -> None:
    oauth = services.oauth
    await oauth.register_client("race-client", {"redirect_uris": [REDIRECT]}, None)
    pending = await oauth.begin(AuthorizationRequest("race-client", REDIRECT, True, ["buyer"], None, "c", None))
    assert isinstance(pending, str)
    one_time, _ = await oauth.create_approval_code()
    code = (await oauth.approve(pending, one_time)).params["code"]
    grant = await oauth.load_code("race-client", code)
    assert grant is not None

    outcomes = await _race(8, lambda: oauth.exchange_code(grant))

    assert sum(isinstance(outcome, IssuedTokens) for outcome in outcomes) == 1


async def test_a_one_time_approval_code_approves_one_request_only(services: Services) -> None:
    oauth = services.oauth
    await oauth.register_client("race-client", {"redirect_uris": [REDIRECT]}, None)
    requests = []
    for _ in range(4):
        pending = await oauth.begin(AuthorizationRequest("race-client", REDIRECT, True, ["merchant"], None, "c", None))
        assert isinstance(pending, str)
        requests.append(pending)
    one_time, _ = await oauth.create_approval_code()
    outcomes: list[object] = []

    async def approve(request: str) -> None:
        try:
            outcomes.append(await oauth.approve(request, one_time))
        except Exception as refused:  # the refusals are what is counted
            outcomes.append(refused)

    async with anyio.create_task_group() as tasks:
        for request in requests:
            tasks.start_soon(approve, request)
    assert sum(isinstance(outcome, Redirect) for outcome in outcomes) == 1
    assert {type(outcome).__name__ for outcome in outcomes if not isinstance(outcome, Redirect)} == {
        "OAuthApprovalRefused"
    }
