"""A tiny MCP server over stdio for tests/test_agents.py: an order desk with two tools.

Written with the maintained ``mcp`` SDK (MCPServer in mcp 2, FastMCP in mcp 1)."""

try:
    from mcp.server.mcpserver import MCPServer as Server
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server
    from mcp.server.fastmcp.exceptions import ToolError

server = Server("orders")
ORDERS = {"A1": "shipped", "B2": "open"}


@server.tool()
def order_status(order_id: str) -> str:
    """The status of an order."""
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")  # a deliberate error: its message reaches the client
    return ORDERS[order_id]


@server.tool()
def cancel_order(order_id: str) -> str:
    """Cancel an open order."""
    ORDERS[order_id] = "canceled"
    return f"order {order_id} canceled"


if __name__ == "__main__":
    server.run()
