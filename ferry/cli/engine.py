"""`ferry engine run` (the engine's REST API server) and `ferry engine db-upgrade`."""
from __future__ import annotations

import click

from ferry.common.errors import InvalidInput, OperationFailed


def _upgrade(url: str) -> None:
    """Upgrade the schema, turning "cannot connect" into a one-line error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ferry.engine.db import upgrade_database

    try:
        upgrade_database(url)
    except SQLAlchemyError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise OperationFailed(f"cannot open the database {shown}: {getattr(exc, 'orig', None) or exc}") from None


@click.group("engine")
def engine_group() -> None:
    """The engine: inventory, policies, plans (REST API)."""


@engine_group.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--database-url", default=None, metavar="URL",
              help="SQLAlchemy URL (default: FERRY_DATABASE_URL, else SQLite in FERRY_STATE_DIR).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--monitor-interval", default=5.0, show_default=True, type=float,
              help="Seconds between refreshes of every host from its agent.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with the certificate from `ferry pki engine-cert`.")
@click.option("--engine-id", default=None, metavar="ID",
              help="This engine's id among several on one PostgreSQL (default: FERRY_ENGINE_ID, else unique "
                   "to the process). Each engine needs its own; a stable one takes its own leases back at restart.")
def run_command(host: str, port: int, database_url: str | None, log_level: str, monitor_interval: float,
                tls: bool = False, engine_id: str | None = None) -> None:
    """Run the engine: REST API, migrations, host monitoring; the database schema is upgraded at start."""
    import logging

    import uvicorn

    from ferry.engine.api import create_app
    from ferry.engine.db import database_url as resolve_url

    if not 1 <= port <= 65535:
        raise InvalidInput("--port", f"must be 1..65535, got {port}")
    if monitor_interval <= 0:
        raise InvalidInput("--monitor-interval", f"must be above 0, got {monitor_interval}")
    if engine_id is not None:
        from ferry.engine.lease_rules import check_engine_id

        try:
            check_engine_id(engine_id)
        except ValueError as exc:
            raise InvalidInput("--engine-id", str(exc)) from None
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ferry.pki.tls import engine_server_tls

    ssl_options = engine_server_tls() if tls else {}
    if not tls and host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: serving plain HTTP on {host}: API tokens cross the network in clear; "
                   "use --tls (see docs/security.md)", err=True)
    url = resolve_url(database_url)
    _upgrade(url)
    click.echo(f"ferry engine: {'https' if tls else 'http'}://{host}:{port}/ (OpenAPI at /openapi.json), "
               f"database {url.split('://', 1)[0]}", err=True)
    app = create_app(url, upgrade=False, background=True, monitor_interval=monitor_interval, engine_id=engine_id)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, **ssl_options)
    _EngineServer(config, on_exit=app.state.orchestrator.begin_stop).run()


GRACEFUL_SHUTDOWN_S = 5   # open requests (long polls hold up to 10 s) get this long after SIGTERM


def _engine_server_class():
    import uvicorn

    class EngineServer(uvicorn.Server):
        """uvicorn's server, but SIGTERM/SIGINT first tell the orchestrator to take no new
        action: uvicorn only runs the app's shutdown once open requests are done, and meanwhile
        migration threads must send nothing more (no rerun, no VM.migrate; issue 11)."""

        def __init__(self, config, on_exit):
            super().__init__(config)
            self._on_exit = on_exit

        def handle_exit(self, sig, frame) -> None:
            self._on_exit()
            super().handle_exit(sig, frame)

    return EngineServer


def _EngineServer(config, on_exit):  # noqa: N802 - a class made on first use (uvicorn imported lazily)
    return _engine_server_class()(config, on_exit)


@engine_group.command("db-upgrade")
@click.option("--database-url", default=None, metavar="URL",
              help="SQLAlchemy URL (default: FERRY_DATABASE_URL, else SQLite in FERRY_STATE_DIR).")
def db_upgrade_command(database_url: str | None) -> None:
    """Create or upgrade the engine's database schema to the newest revision."""
    from ferry.engine.db import database_url as resolve_url

    url = resolve_url(database_url)
    _upgrade(url)
    click.echo(f"database schema is up to date ({url.split('://', 1)[0]})")


def register(group: click.Group) -> None:
    group.add_command(engine_group)
