"""mcp-checkout."""
