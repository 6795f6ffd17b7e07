"""``python -m mcp_checkout.cli``: the same as the ``mcp-checkout`` command."""

import sys

from mcp_checkout.cli import main

sys.exit(main())
