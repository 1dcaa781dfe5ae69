"""The engine's database: models, the Alembic-managed schema, the repositories and the unit of work."""
from ferry.engine.db.database import Database, database_url, upgrade_database
from ferry.engine.db.store import Store

__all__ = ["Database", "Store", "database_url", "upgrade_database"]
