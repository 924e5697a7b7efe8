"""MCP servers through fastmcp: config, connections, tools and their trust."""
