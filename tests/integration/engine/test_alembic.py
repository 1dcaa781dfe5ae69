"""The schema comes from Alembic alone: upgrading an empty SQLite file and an empty PostgreSQL
database to head gives exactly the tables the models describe, and it can go down and up again."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ferry.engine.db import upgrade_database
from ferry.engine.db.database import alembic_config, downgrade_database, make_engine
from ferry.engine.db.models import Base

TABLES = {"clusters", "hosts", "vms", "policies", "migrations", "events", "api_tokens", "drains", "leases",
          "pair_throughput", "alembic_version"}


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_upgrade_from_empty_matches_the_models(database_url):
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert ctx.get_current_revision() == _head(database_url)
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reversible(database_url):
    upgrade_database(database_url)
    upgrade_database(database_url)  # the engine does this at every start
    downgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_a_database_made_before_the_schema_package_was_renamed_still_upgrades(database_url):
    """ferry/engine/migrations became ferry/engine/db/schema; the revision ids (0001...) and the
    alembic_version table stayed, so a database stamped by the old package goes on to head."""
    upgrade_database(database_url, "0002")   # what an engine of the 0002 days left behind
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0007" == _head(database_url)
    finally:
        engine.dispose()
