"""Child process: the embedded Tiled server on a persistent directory, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key-file", type=Path, required=True)
    args = parser.parse_args()

    from tiled.server import SimpleTiledServer

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
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
