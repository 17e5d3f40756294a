"""The web app answers only its own Host, and changes state only for its own Origin (app/guard.py)."""

from __future__ import annotations

import json
import sys

import httpx
import pytest

from tests.conftest import _free_port

PORT = _free_port()
LOCAL = f"127.0.0.1:{PORT}"


class Client:
    """Requests to the app with any Host header (httpx connects to 127.0.0.1 whatever it says)."""

    def __init__(self, http: httpx.Client):
        self.http = http

    def open(self, path: str, method: str = "GET", headers: dict | None = None, **kwargs) -> httpx.Response:
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.open(path, "GET", **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.open(path, "POST", **kwargs)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """`morphospace serve` (no Tiled needed for these routes), allowing one proxy name."""
    from app.services import Supervisor, http_ok, wait_until

    sup = Supervisor(tmp_path_factory.mktemp("guard-logs"))
    sup.env.update(MORPHOSPACE_DATA_DIR=str(tmp_path_factory.mktemp("guard-data")),
                   MORPHOSPACE_TILED_URI="http://127.0.0.1:9/api/v1",
                   MORPHOSPACE_ALLOWED_HOSTS='["morpho.example.org"]')
    child = sup.start("web", [sys.executable, "-m", "app.cli", "serve", "--port", str(PORT)])
    wait_until(child, http_ok(f"http://{LOCAL}/"), timeout=120)
    with httpx.Client(base_url=f"http://{LOCAL}", timeout=30, trust_env=False) as http:
        yield Client(http)
    sup.stop_all()


def standby_callback_body(client, origin_host: str) -> tuple[dict, dict]:
    """A real callback request, as the page sends it: the live panel's warm-up on no map."""
    deps = client.get("/_dash-dependencies", headers={"Host": origin_host}).json()
    dep = next(d for d in deps if '"standby"' in d["output"])
    live = {"aio_id": "live", "component": "LiveAIO"}
    body = {
        "output": dep["output"],
        "outputs": [{"id": {**live, "subcomponent": "standby"}, "property": "data"},
                    {"id": {**live, "subcomponent": "poll"}, "property": "disabled"}],
        "inputs": [{"id": "current-map", "property": "data", "value": None},
                   {"id": {**live, "subcomponent": "config"}, "property": "data", "value": None},
                   {"id": {**live, "subcomponent": "poll"}, "property": "n_intervals", "value": None}],
        "changedPropIds": ["current-map.data"], "state": [],
    }
    return body, {"Content-Type": "application/json"}


@pytest.mark.parametrize("host", ["evil.example.com", f"evil.example.com:{PORT}", "127.0.0.1:9999",
                                  "localhost", "attacker.127.0.0.1.nip.io"])
def test_foreign_host_is_refused_on_every_route(client, host):
    """DNS rebinding: a page and Dash's own routes under a foreign Host get 400 and one line."""
    for method, path in (("GET", "/"), ("GET", "/_dash-layout"), ("POST", "/_dash-update-component")):
        response = client.open(path, method=method, headers={"Host": host, "Origin": f"http://{host}"})
        assert response.status_code == 400, (method, path)
        assert response.text.startswith(f"refused: Host {host!r}")


@pytest.mark.parametrize("host", [LOCAL, f"localhost:{PORT}", f"[::1]:{PORT}", "morpho.example.org"])
def test_own_hosts_get_the_page(client, host):
    """The loopback names on the app's port and the allowed_hosts entries are served."""
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 200 and "Morphospace" in response.text


@pytest.mark.parametrize("origin", [None, "http://evil.example.com", f"http://127.0.0.1:{PORT + 1}",
                                    "null", f"file://{LOCAL}"])
def test_state_changing_request_from_a_foreign_or_no_origin_is_refused(client, origin):
    """A callback POST without the page's Origin (a script, a foreign page's form) gets 403."""
    body, headers = standby_callback_body(client, LOCAL)
    if origin is not None:
        headers["Origin"] = origin
    response = client.post("/_dash-update-component", content=json.dumps(body),
                           headers={**headers, "Host": LOCAL})
    assert response.status_code == 403
    assert response.text.startswith("refused: ")


@pytest.mark.parametrize("host, origin", [(LOCAL, f"http://{LOCAL}"),
                                          ("morpho.example.org", "https://morpho.example.org")])
def test_the_page_own_callback_request_is_answered(client, host, origin):
    """The same POST from the app's own origin (or a listed proxy name) reaches the callback."""
    body, headers = standby_callback_body(client, host)
    response = client.post("/_dash-update-component", content=json.dumps(body),
                           headers={**headers, "Host": host, "Origin": origin})
    assert response.status_code == 200
    standby = next(v for k, v in response.json()["response"].items() if '"standby"' in k)
    assert standby == {"data": "no map"}  # no map shown: nothing to warm up
