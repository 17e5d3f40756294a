"""Start the embedded services as child processes, and stop every one of them.

Each child runs in its own session (process group), so stopping it also stops what it
spawned (uvicorn workers, Prefect's flow-run subprocesses). Logs go to ``<data_dir>/logs``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A child service did not start; the message points at its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

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

    def start(self, name: str, args: list[str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        handle = open(log_path, "ab")
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        handle.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        log.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return child

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
