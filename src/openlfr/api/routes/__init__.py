"""REST API routers, one per area; each only parses, calls a service and shapes the answer."""
