"""The engine's REST API (FastAPI)."""
from ferry.engine.api.app import create_app

__all__ = ["create_app"]
