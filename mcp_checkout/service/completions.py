"""Argument completion: what a client may offer while someone types a SKU, a category or an order id."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_checkout.domain import Principal
from mcp_checkout.service import policy
from mcp_checkout.store import completions
from mcp_checkout.store.db import Database

MAX_SUGGESTIONS = 100  # the MCP limit for one completion answer
MAX_PREFIX = 128


@dataclass(frozen=True)
class Suggestions:
    values: list[str]
    has_more: bool


def _usable(prefix: str) -> bool:
    return len(prefix) <= MAX_PREFIX and "\x00" not in prefix


def _page(found: list[str]) -> Suggestions:
    return Suggestions(values=found[:MAX_SUGGESTIONS], has_more=len(found) > MAX_SUGGESTIONS)


class CompletionService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def skus(self, prefix: str) -> Suggestions:
        if not _usable(prefix):
            return Suggestions([], False)
        return _page(await self._db.read(lambda conn: completions.sku_codes(conn, prefix, MAX_SUGGESTIONS + 1)))

    async def categories(self, prefix: str) -> Suggestions:
        if not _usable(prefix):
            return Suggestions([], False)
        found = await self._db.read(lambda conn: completions.category_names(conn, prefix, MAX_SUGGESTIONS + 1))
        return _page(found)

    async def order_ids(self, principal: Principal, prefix: str) -> Suggestions:
        """Only orders the caller may see: a buyer's own, every order for the merchant."""
        if not _usable(prefix):
            return Suggestions([], False)
        owner = policy.owner_filter(principal)
        found = await self._db.read(lambda conn: completions.order_ids(conn, prefix, owner, MAX_SUGGESTIONS + 1))
        return _page(found)
