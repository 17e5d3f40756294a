"""How the page is wired: services handed to each app, Prefect left out of the page.

(That no panel imports another is tests/test_architecture.py's.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from app.webapp import SIDEBAR, create_app
from components.ids import CURRENT
from components.services import Services
from components.sidebar import SidebarAIO
from core.data.reader import ResultStore
from core.settings import Settings
from tests.conftest import ROOT

HOST = {"Host": "127.0.0.1:8050", "Origin": "http://127.0.0.1:8050"}  # as the page sends them (app.guard)
UNREACHABLE = "http://127.0.0.1:9/api/v1"


def publish_current(app, projection_id: str) -> object:
    """What the page gets in CURRENT when the sidebar shows ``projection_id`` (Dash's own request)."""
    ids = [SidebarAIO.ids.select(SIDEBAR, level) for level in ("projections", "clusterings")]
    body = {
        "output": f"{CURRENT}.data", "outputs": {"id": CURRENT, "property": "data"},
        "inputs": [{"id": ids[0], "property": "value", "value": projection_id},
                   {"id": ids[1], "property": "value", "value": None}],
        "state": [{"id": CURRENT, "property": "data", "value": None}],
        "changedPropIds": [f'{{"aio_id":"{SIDEBAR}","component":"SidebarAIO","subcomponent":"projections"}}.value'],
    }
    response = app.server.test_client().post("/_dash-update-component", json=body, headers=HOST)
    assert response.status_code == 200, response.text
    return response.get_json()["response"][CURRENT]["data"]


def test_each_app_reads_the_store_it_was_given(store, tmp_path):
    """Two apps in one process: one answers from its store, the other (Tiled down) with no map."""
    writer = store.writer("projections", metadata={"latents_id": "lat-1", "dataset_id": "ds-1",
                                                   "model_id": "m-1", "params": {"n_components": 3}})
    writer.write_array("embedding", np.zeros((4, 3), dtype=np.float32))
    projection_id = writer.finish()
    settings = Settings(data_dir=tmp_path, tiled_uri=UNREACHABLE)
    given = create_app(settings, Services.from_store(store, settings=settings))
    down = create_app(settings, Services.from_settings(settings))
    assert publish_current(given, projection_id) == {
        "clustering_id": None, "projection_id": projection_id, "latents_id": "lat-1", "dataset_id": "ds-1",
        "model_id": "m-1", "n_components": 3}
    assert publish_current(down, projection_id) is None


def test_the_store_reads_as_the_protocol_says(store):
    """core.data.store.Store is a ResultStore: the page's signatures hold for the real thing."""
    assert isinstance(store, ResultStore)
    assert not isinstance(object(), ResultStore)


def test_the_page_loads_no_prefect():
    """Building the whole page imports no Prefect: the banner asks it through flows.status, on call."""
    code = ("import sys, tempfile\nfrom app.webapp import create_app\nfrom core.settings import Settings\n"
            f"create_app(Settings(data_dir=tempfile.mkdtemp(), tiled_uri={UNREACHABLE!r}))\n"
            "bad = [m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')]\n"
            "print(bad[:5]); sys.exit(1 if bad else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
