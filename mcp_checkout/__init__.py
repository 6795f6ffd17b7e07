"""mcp-checkout: an MCP server for exactly-once agent checkout."""

__version__ = "0.1.0"
