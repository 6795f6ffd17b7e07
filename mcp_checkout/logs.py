"""Logging to stderr only (stdout belongs to the stdio transport), and never a secret or buyer data.

Two guards, both here:
- ``MCP_CHECKOUT_LOG_LEVEL=DEBUG`` turns on debug records of this package only. Third-party libraries
  stay at INFO or above whatever the level: at DEBUG several echo whole message bodies (sse-starlette
  every SSE chunk, i.e. every tool result; the MCP SDK every JSON-RPC message; httpx/httpcore headers),
  and those carry checkout link tokens, webhook signing secrets, API keys and buyer emails and addresses.
  Libraries known to be chatty even at INFO are held at WARNING.
- Every formatted line (message, arguments and traceback) goes through :func:`redact`, which masks the
  shapes of our secrets (API keys, webhook secrets, Stripe keys and client secrets, checkout link
  tokens, CSRF and browser-proof cookies), bearer tokens and email addresses, in case a message or an
  exception text carries one.
"""

from __future__ import annotations

import logging
import re
import sys

_PACKAGE = "mcp_checkout"
_HELD_AT_WARNING = ("alembic", "httpx", "httpcore", "uvicorn.access", "stripe", "asyncio")

_SECRET_SHAPES = re.compile(
    r"""
      (?P<prefixed>\b(?:mcpk|whsec|sk_live|sk_test|rk_live|rk_test|mcpco)_[A-Za-z0-9_+/=.-]{6,})
    | (?P<client_secret>\bpi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)
    | (?P<bearer>(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,})
    | (?P<checkout>/checkout/)(?!done/|canceled/)[A-Za-z0-9_-]{16,}
    | (?P<email>[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)
    """,
    re.VERBOSE,
)


def _mask(match: re.Match[str]) -> str:
    if match.group("checkout"):
        return "/checkout/[token]"
    kind = match.lastgroup or "secret"
    return f"[{kind} redacted]"


def redact(text: str) -> str:
    """``text`` with every secret-shaped or email-shaped part masked."""
    return _SECRET_SHAPES.sub(_mask, text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr, plainly and redacted. Call before anything else logs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root.setLevel(max(numeric, logging.INFO))  # libraries: never DEBUG (they echo bodies there)
    logging.getLogger(_PACKAGE).setLevel(numeric)
    for noisy in _HELD_AT_WARNING:
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
