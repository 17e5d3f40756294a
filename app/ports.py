"""Ports that are really a service's own: free ones picked, taken ones refused, listeners identified.

A health check alone cannot say *which* server answered (two demos once shared one Prefect
server that way), so a started service counts as ready only when the port it answers on is
held by one of its own processes.
"""

from __future__ import annotations

import socket

import psutil


class PortTaken(RuntimeError):
    """A port the user named is held by another process; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the caller still checks who holds it once started)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which the process ``pid`` or any of its descendants listens."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    ports = set()
    for process in family:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ports.update(c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN)
    return ports


def taken_message(host: str, port: int, setting: str) -> str:
    return (f"port {port} on {host} ({setting}) is in use by another program: choose another, "
            f"or leave {setting} unset and a free port is picked")
