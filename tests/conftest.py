"""Shared fixtures: a real Tiled server for the session, a fresh project per test."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO_DATA = Path(__file__).resolve().parents[1] / "app" / "demo_data"


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory):
    """A real SimpleTiledServer (HTTP on 127.0.0.1) shared by the session."""
    from tiled.server import SimpleTiledServer

    server = SimpleTiledServer(directory=tmp_path_factory.mktemp("tiled"), api_key="testkey0123")
    yield server
    server.close()


@pytest.fixture
def store(tiled_server):
    """A Store on the session server, in a project of its own."""
    from core.store import Store

    uri = tiled_server.uri.split("?")[0]
    return Store.from_uri(uri, api_key=tiled_server.api_key, project=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def shared_data(*parts: str) -> Path:
    """A file from ../shared/data, or skip where this checkout has none (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (CI and developers have ../shared/data)")
    return path
