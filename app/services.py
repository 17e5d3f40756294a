"""Start the embedded services as child processes, and stop every one of them.

Each child runs in its own session (process group), so stopping it also stops what it
spawned (uvicorn workers, Prefect's flow-run subprocesses). Logs go to ``<data_dir>/logs``;
children start with a umask of 077, so what they write (catalogs, arrays, logs, databases)
is readable by this user only.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.ports import PortTaken, free_port, listening_ports, port_in_use, taken_message

__all__ = ["Child", "HttpService", "PortTaken", "ServiceError", "Supervisor", "free_port", "http_ok",
           "port_in_use", "python_module", "tail", "wait_until"]

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A child service did not start; the message points at its log."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def listens_on(self, port: int) -> bool:
        """Whether this child (or a process it spawned) holds ``port``: the server that answers there is ours."""
        return port in listening_ports(self.process.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT the group (Prefect workers stop cleanly on it), then SIGKILL what is left."""
        pgid = self.process.pid
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure nothing it spawned lingers in the group.
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


@dataclass
class Supervisor:
    """Owns the children of one `morphospace demo`; stops them in reverse order."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    umask: int = 0o077

    def start(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> Child:
        """Start ``args`` with the supervisor's environment plus ``env`` (settings for this child only)."""
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        handle = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env={**self.env, **(env or {})},
            start_new_session=True, stdin=subprocess.DEVNULL, umask=self.umask,
        )
        handle.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        log.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return child

    def forget(self, child: Child) -> None:
        """Drop a child that has exited (a start retried on another port)."""
        self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.alive():
                log.info("stopping %s", child.name)
            child.stop()
        self.children.clear()


def wait_until(child: Child, ready: Callable[[], bool], *, timeout: float) -> None:
    """Poll ``ready`` until it holds; fail early, pointing at the log, if the child dies."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not child.alive():
            raise ServiceError(
                f"{child.name} exited with code {child.process.returncode} while starting; "
                f"see {child.log_path}:\n{tail(child.log_path)}"
            )
        if time.monotonic() > deadline:
            raise ServiceError(f"{child.name} did not become ready in {timeout:.0f} s; see {child.log_path}")
        time.sleep(0.25)


@dataclass
class HttpService:
    """An HTTP server child on a port of its own: a free one is picked (and picked again when
    another program takes it first) unless the user named one, which must then be free.

    ``launch(port)`` starts the child; ``health(port)`` is a URL that answers 200 once it is
    ready. Ready means answering *and* listening from one of the child's own processes.
    """

    sup: Supervisor
    launch: Callable[[int], Child]
    health: Callable[[int], str]
    host: str
    port: int
    setting: str  # where the user names the port, for the message when it is taken
    named: bool = False
    attempts: int = 3
    child: Child | None = None

    def start(self) -> HttpService:
        if port_in_use(self.host, self.port):
            if self.named:
                raise PortTaken(taken_message(self.host, self.port, self.setting))
            self.port = free_port(self.host)
        self.child = self.launch(self.port)
        return self

    def wait(self, *, timeout: float) -> int:
        """Block until the server is ready; its port."""
        retries = self.attempts - 1
        while True:
            try:
                wait_until(self.child, self._ready, timeout=timeout)
                return self.port
            except ServiceError:
                # The child exited and another program holds the port: it was taken between our
                # check and the child's bind.
                if self.child.alive() or not port_in_use(self.host, self.port):
                    raise
                if self.named:
                    raise PortTaken(taken_message(self.host, self.port, self.setting)) from None
                if not retries:
                    raise
            retries -= 1
            log.info("%s: port %d was taken meanwhile, trying another", self.child.name, self.port)
            self.sup.forget(self.child)
            self.port = free_port(self.host)
            self.child = self.launch(self.port)

    def _ready(self) -> bool:
        return self.child.listens_on(self.port) and http_ok(self.health(self.port))()


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
