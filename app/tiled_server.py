"""Child process: the embedded Tiled server on a persistent directory, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
import urllib.parse
from pathlib import Path

# An API key in a query string (`?api_key=...`), however it is percent-encoded.
_KEY_IN_QUERY = re.compile(r"(api_key=)[^&\s]*", re.IGNORECASE)


class RedactKeys(logging.Filter):
    """Keep API keys that clients put in query strings out of the access log (uvicorn's access
    records carry the request path as their third argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            path = _KEY_IN_QUERY.sub(r"\1[redacted]", urllib.parse.unquote(str(path)))
            record.args = (client, method, path, version, status)
        return True


def serialize_table_access() -> None:
    """One table operation at a time in this process's Tiled server.

    Tiled 0.2.20's ``SimpleTiledServer`` keeps tables in DuckDB behind a single shared connection
    (a StaticPool) that its request threads use at once: a page reading a live table while the
    operator appended to it failed with DuckDB's "closed pending query result" (HTTP 500) and,
    three times in our tests, crashed the server (SIGSEGV). Until Tiled serialises this itself,
    every table read, append and creation of the server's process takes one lock. Idempotent.
    """
    from tiled.adapters import sql

    adapter = sql.SQLAdapter
    if getattr(adapter, "_morphospace_serialized", False):
        return
    lock = threading.RLock()

    def locked(method):
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)
        return call

    for name in ("append_partition", "_read_full_table_or_partition"):
        setattr(adapter, name, locked(getattr(adapter, name)))
    adapter.init_storage = classmethod(locked(adapter.__dict__["init_storage"].__func__))
    adapter._morphospace_serialized = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key-file", type=Path, required=True)
    args = parser.parse_args()

    from tiled.server import SimpleTiledServer

    serialize_table_access()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("uvicorn.access").addFilter(RedactKeys())  # Tiled's logging config keeps it
    # Binds 127.0.0.1 only; the key never appears on a command line or in a log.
    server = SimpleTiledServer(
        directory=args.directory, port=args.port, api_key=args.api_key_file.read_text().strip()
    )
    try:
        stop.wait()
    finally:
        server.close()


if __name__ == "__main__":
    main()
