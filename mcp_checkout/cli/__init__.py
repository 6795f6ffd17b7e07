"""``mcp-checkout``: the command line (entry point ``main``).

One module per command or group of commands (``serve``, ``store``, ``keys``, ``webhooks``, ``doctor``,
``setup``), each with a ``register(commands)``; ``base`` holds what they share and how to add a command,
``failures`` turns every failure into one line and an exit code.
"""

from mcp_checkout.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
