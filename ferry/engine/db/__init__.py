"""The engine's database: models, Alembic-managed schema, and the store over them."""
from ferry.engine.db import tokens as _tokens  # noqa: F401,E402 - registers the api_tokens table
from ferry.engine.db.database import Database, database_url, upgrade_database
from ferry.engine.db.store import Store

__all__ = ["Database", "Store", "database_url", "upgrade_database"]
