"""One live token per deployment: every web worker and `morphospace live` agree (app/live.py)."""

from __future__ import annotations

import stat
import threading

from app.live import LiveRunner, deployment_token, read_or_create_secret
from app.webapp import create_app
from components.services import Services
from core.settings import Settings

HOST = {"Host": "127.0.0.1:8050"}


def test_two_apps_on_the_same_settings_accept_each_others_token(tmp_path):
    """Two app instances (as two gunicorn workers): a page served by one replays through the other."""
    settings = Settings(data_dir=tmp_path / "data", tiled_uri="http://127.0.0.1:9/api/v1")
    runners = [LiveRunner(settings), LiveRunner(settings)]
    first, second = (create_app(settings, Services.from_settings(settings, live=r)) for r in runners)
    token = runners[0].token  # what the first worker's pages get
    assert runners[1].token == token
    client = second.server.test_client()
    refused = client.get("/live/s1/points", headers={**HOST, "X-Live-Token": token + "x"})
    accepted = client.get("/live/s1/points", headers={**HOST, "X-Live-Token": token})
    assert refused.status_code == 403
    assert accepted.status_code == 404  # past the token: the session (and Tiled) are not there
    assert first.server.test_client().get(
        "/live/s1/points", headers={**HOST, "X-Live-Token": token}).status_code == 404


def test_workers_starting_together_agree_on_one_secret_file(tmp_path):
    """Eight threads create the secret at once: one value, mode 0600, no drafts left behind."""
    path = tmp_path / "data" / "live_token"
    barrier, found = threading.Barrier(8), []

    def worker() -> None:
        barrier.wait()
        found.append(read_or_create_secret(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1 and len(found[0]) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["live_token"]
    assert read_or_create_secret(path) == found[0]  # and it stays


def test_configured_token_wins_and_no_file_is_written(tmp_path):
    """MORPHOSPACE_LIVE_TOKEN is used as given; the data folder gets no token file."""
    settings = Settings(data_dir=tmp_path, live_token="configured-token-0123456789")
    assert deployment_token(settings) == ("configured-token-0123456789", "MORPHOSPACE_LIVE_TOKEN")
    assert not (tmp_path / "live_token").exists()
