"""Logging to stderr only: stdout belongs to the stdio transport."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr, plainly. Call before anything else logs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
