"""The embedded Prefect server: the environment it and its clients need, and its start.

The server's API is protected: a basic-auth secret generated once into the data folder (0600)
is required on every request but the health probe, and cross-origin requests are allowed from
the server's own origin only, so a web page elsewhere cannot submit runs. Clients (the app,
workers, the CLI) get the secret through their environment, never on a command line.

Run as a module, this is the server process: `prefect server start` with SQLite transactions
that wait for the database's write lock (see :func:`main`).
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

from app.services import Child, HttpService, Supervisor
from core.settings import Settings

# Services of `prefect server start` that this app has no use for (no schedules, no paused
# runs): fewer writers on the SQLite database, fewer "database is locked" retries.
UNUSED_SERVICES = ("SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS")

# Seconds a database statement (and a connection waiting for SQLite's write lock) may take;
# Prefect's default, 10 s, is shorter than the 60 s busy timeout it sets on each connection.
DATABASE_TIMEOUT = 60


def prefect_env(settings: Settings, api_url: str) -> dict[str, str]:
    """What every process that talks to Prefect needs; set before prefect is imported."""
    env = {
        "PREFECT_HOME": str(settings.data_dir / "prefect"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    auth = settings.resolved_prefect_auth()
    if auth:
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def prefect_server_env(settings: Settings, port: int) -> dict[str, str]:
    """Settings for the server process only: its database, its API protection, its services."""
    database = (settings.prefect_database_url.get_secret_value() if settings.prefect_database_url
                else f"sqlite+aiosqlite:///{settings.data_dir / 'prefect' / 'prefect.db'}")
    return {
        **prefect_env(settings, f"http://{settings.host}:{port}/api"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database,
        "PREFECT_SERVER_DATABASE_TIMEOUT": str(DATABASE_TIMEOUT),
        "PREFECT_SERVER_API_AUTH_STRING": settings.ensure_prefect_auth(),
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"http://{settings.host}:{port}",
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in UNUSED_SERVICES},
    }


def prefect_server(sup: Supervisor, settings: Settings) -> HttpService:
    """The embedded server on ``settings.prefect_port`` (or a free port when that one is taken
    and the user did not set it); call ``.start()`` then ``.wait()``."""
    settings.ensure_prefect_auth()  # before any client's environment is made

    def launch(port: int) -> Child:
        return sup.start("prefect-server", [
            sys.executable, "-m", "app.prefect_server", "--host", settings.host, "--port", str(port),
        ], env=prefect_server_env(settings, port))

    return HttpService(
        sup, launch, lambda port: f"http://{settings.host}:{port}/api/health", host=settings.host,
        port=settings.prefect_port, setting="MORPHOSPACE_PREFECT_PORT",
        named="prefect_port" in settings.model_fields_set,
    )


def main() -> None:
    """`prefect server start ARGS`, its SQLite transactions begun IMMEDIATE.

    Prefect begins most SQLite transactions DEFERRED: one that reads and then writes (the
    triggers service does, for every flow-run event our zombie automation watches) cannot
    take the write lock when another connection committed in between, and fails at once with
    "database is locked", whatever the busy timeout; Prefect retries, but logs a traceback
    each time. Begun IMMEDIATE, a transaction waits for the write lock (up to SQLite's busy
    timeout, 60 s) instead. Prefect's own hook for a database configuration installs it; with
    PostgreSQL (``MORPHOSPACE_PREFECT_DATABASE_URL``) nothing changes.
    """
    from prefect.cli import app
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.settings import get_current_settings

    class ImmediateSqlite(AioSqliteConfiguration):
        @asynccontextmanager
        async def begin_transaction(self, session, with_for_update: bool = False):
            async with super().begin_transaction(session, with_for_update=True) as transaction:
                yield transaction

    url = get_current_settings().server.database.connection_url.get_secret_value()
    config = ImmediateSqlite(connection_url=url) if url.startswith("sqlite") else None
    sys.argv = ["prefect", "server", "start", *sys.argv[1:]]  # Prefect's CLI reads its arguments there
    with temporary_database_config(config):
        app()


if __name__ == "__main__":
    main()
