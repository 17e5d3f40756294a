"""Embedded services get ports that are really their own (app.services.HttpService)."""

from __future__ import annotations

import socket
import sys

import pytest

from app.ports import PortTaken, free_port
from app.services import HttpService, Supervisor, http_ok, wait_until


def http_server(sup: Supervisor, name: str, port: int):
    return sup.start(name, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)])


def test_a_named_port_that_is_taken_is_one_clear_error(tmp_path):
    """A port the user chose and another program holds: refused before anything starts."""
    sup = Supervisor(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = HttpService(sup, lambda p: http_server(sup, "web", p), lambda p: f"http://127.0.0.1:{p}/",
                              host="127.0.0.1", port=port, setting="--port", named=True)
        with pytest.raises(PortTaken, match=rf"port {port} on 127.0.0.1 \(--port\) is in use"):
            service.start()
    assert sup.children == []


def test_a_server_answering_on_our_port_is_not_taken_for_ours(tmp_path):
    """Another program's server took the port between the check and the bind: its answer does
    not count, and the service starts again on a free port, answering from its own process."""
    other, sup = Supervisor(tmp_path / "other"), Supervisor(tmp_path / "ours")
    try:
        port = free_port()
        foreign = http_server(other, "foreign", port)
        wait_until(foreign, http_ok(f"http://127.0.0.1:{port}/"), timeout=30)
        service = HttpService(sup, lambda p: http_server(sup, "ours", p), lambda p: f"http://127.0.0.1:{p}/",
                              host="127.0.0.1", port=port, setting="--port")
        service.child = service.launch(port)  # as if the port had been free when checked
        assert not service._ready()  # the health check answers, but from the other server
        moved = service.wait(timeout=30)
        assert moved != port and service.child.listens_on(moved) and not foreign.listens_on(moved)
        assert [c.name for c in sup.children] == ["ours"] and service.child.alive()
    finally:
        sup.stop_all()
        other.stop_all()
