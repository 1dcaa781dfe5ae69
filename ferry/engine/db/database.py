"""Where the engine's database is, how to connect to it, and bringing its schema up to date.

The URL comes from FERRY_DATABASE_URL; without it the engine uses a SQLite file in its state
directory (FERRY_STATE_DIR, default /var/lib/ferry), so a first run needs no set-up. The schema
is owned by Alembic (ferry/engine/db/schema: migrations of the schema, not live ones);
`upgrade_database` runs it to head and the engine calls it at start. The revision ids and the
alembic_version table are those of the old ferry/engine/migrations, so existing databases upgrade.
"""
from __future__ import annotations

import os
import pathlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from ferry.common.errors import InvalidInput
from ferry.common.private_files import private_dir, private_file

if TYPE_CHECKING:
    from ferry.engine.db.store import Store

DEFAULT_STATE_DIR = "/var/lib/ferry"
SCHEMA_DIR = pathlib.Path(__file__).resolve().parent / "schema"  # the Alembic scripts and versions


def state_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("FERRY_STATE_DIR") or DEFAULT_STATE_DIR)


def database_url(url: str | None = None) -> str:
    """The given URL, else FERRY_DATABASE_URL, else sqlite:///<state dir>/engine.db.

    A bare `postgresql://` URL is pointed at the psycopg 3 driver, the one Ferry installs.
    """
    url = url or os.environ.get("FERRY_DATABASE_URL") or f"sqlite:///{state_dir() / 'engine.db'}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput("database_url", f"{url!r} is not a database URL (e.g. sqlite:///path or "
                                           "postgresql://user@host/db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput("database_url", f"unsupported database {parsed.get_backend_name()!r} "
                                           "(SQLite or PostgreSQL)")
    return parsed.render_as_string(hide_password=False)


PG_POOL_SIZE = 24
PG_POOL_OVERFLOW = 24
READER_POOL_SIZE = 8       # Database.reads(): REST reads outside a transaction
READER_POOL_OVERFLOW = 16


def make_engine(url: str | None = None, **options) -> Engine:  # noqa: ANN003
    """A SQLAlchemy engine; SQLite gets foreign keys on, a busy timeout and cross-thread use
    (FastAPI runs request handlers in a thread pool). `options` go to PostgreSQL's engine."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            db_file = pathlib.Path(parsed.database)  # 0600 in a 0700 dir (journals inherit the file's mode)
            private_dir(db_file.parent, tighten=db_file.parent == state_dir())
            private_file(db_file)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # The host monitor's refresh threads and the API's request threads each hold a connection
    # while they work; SQLAlchemy's default pool (5 + 10 overflow) made them queue for one.
    options = {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_OVERFLOW, **options}
    engine = create_engine(url, **options)
    _ping_when_idle(engine)
    return engine


PING_IDLE_S = 10.0   # a pooled connection unused this long is checked before it is handed out


def _ping_when_idle(engine: Engine) -> None:
    """Like pool_pre_ping, but only for a connection that sat in the pool PING_IDLE_S or more.

    Why: pool_pre_ping costs a round trip on every checkout, one in four of a REST read's (under
    50 clients on a loaded machine each costs milliseconds). A connection the server dropped
    (restart, idle timeout) has mostly been idle; one dropped while in use fails its statement,
    and SQLAlchemy then invalidates the whole pool, so the others are reopened."""
    from sqlalchemy import exc

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checking_out(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as error:  # noqa: BLE001 - any failure: a fresh connection instead
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error


def alembic_config(url: str):
    """An Alembic config for the schema directory, bound to `url` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCHEMA_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run_alembic(url: str | None, action: str, revision: str) -> None:
    from alembic import command

    url = database_url(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (creating it from empty if need be)."""
    _run_alembic(url, "upgrade", revision)


def downgrade_database(url: str | None = None, revision: str = "base") -> None:
    """Take the schema at `url` back down to `revision` ("base" = no tables)."""
    _run_alembic(url, "downgrade", revision)


class Database:
    """One engine and its session factory; `session()` is a unit of work (commit or roll back)."""

    def __init__(self, url: str | None = None):
        self.url = database_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = None
        self._reader_lock = threading.Lock()

    def upgrade(self) -> None:
        upgrade_database(self.url)

    @contextmanager
    def unit_of_work(self) -> Iterator[Store]:
        """The repositories over one session, committed when the block ends (rolled back on error)."""
        from ferry.engine.db.store import Store

        with self.session() as session:
            yield Store(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A bare session, committed at the end (for code below the repositories)."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reads(self) -> Iterator[Store]:
        """The repositories for reads only, outside a transaction on PostgreSQL.

        Why: a transaction costs a REST read two round trips (BEGIN, COMMIT) of its three or four,
        and at PostgreSQL's READ COMMITTED each statement sees what was committed when it started,
        in a transaction or not; so a read is the same without one. On SQLite (the default) this
        is a unit of work. Not for writes: each statement would be committed on its own."""
        if self.engine.dialect.name != "postgresql":
            with self.unit_of_work() as store:
                yield store
            return
        from ferry.engine.db.store import Store

        session = Session(self._reading_engine(), expire_on_commit=False)
        try:
            yield Store(session)
        finally:
            session.rollback()
            session.close()

    def _reading_engine(self) -> Engine:
        with self._reader_lock:
            if self._reader is None:
                self._reader = make_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=READER_POOL_SIZE,
                                           max_overflow=READER_POOL_OVERFLOW)
            return self._reader

    def dispose(self) -> None:
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()
