"""HTTP API: FastAPI app, routers, auth, live stream, dashboard."""
