"""A plain HTTP server that is not Tiled: records what it is asked, answers a body to leak."""

from __future__ import annotations

import http.server
import threading

import pytest


class Recorder:
    """An HTTP server on 127.0.0.1 that records each GET and answers a fixed JSON body."""

    BODY = b'{"not": "tiled", "secret": "BODY-7d1e"}'

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(Recorder.BODY)))
                self.end_headers()
                self.wfile.write(Recorder.BODY)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.close()
