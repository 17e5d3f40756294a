"""The job API is not open: the test server is protected as the demo's (app.prefect_server)."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration

FOREIGN = {"Origin": "http://attacker.example"}


@pytest.fixture
def deployment(prefect_server):
    """A deployment no worker serves: a run created on it stays scheduled, and is deleted."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the tests' client has the secret, as workers do
        flow_id = client.create_flow_from_name(f"probe-{uuid.uuid4().hex[:8]}")
        deployment_id = client.create_deployment(flow_id=flow_id, name="probe")
    yield deployment_id
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)
        client.delete_flow(flow_id)


def runs_of(deployment_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_a_foreign_page_cannot_submit_runs(prefect_server, deployment):
    """Without the secret a cross-origin POST is refused and creates nothing; CORS does not let a
    foreign origin in; with the secret the same request creates the run."""
    from tests.conftest import PREFECT_AUTH

    url = f"{prefect_server}/deployments/{deployment}/create_flow_run"
    refused = httpx.post(url, json={}, headers=FOREIGN, timeout=30)
    assert refused.status_code == 401 and "access-control-allow-origin" not in refused.headers
    assert runs_of(deployment) == []

    preflight = httpx.options(url, headers={**FOREIGN, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization"}, timeout=30)
    assert preflight.headers.get("access-control-allow-origin") not in ("*", FOREIGN["Origin"])

    user, password = PREFECT_AUTH.split(":", 1)
    created = httpx.post(url, json={}, auth=(user, password), timeout=30)
    assert created.status_code == 201, created.text
    assert [str(run.id) for run in runs_of(deployment)] == [created.json()["id"]]
    wrong = httpx.post(url, json={}, auth=(user, "not-the-secret"), timeout=30)
    assert wrong.status_code == 401


def test_the_health_probe_needs_no_secret(prefect_server):
    """Supervisors and the services banner check health without credentials."""
    assert httpx.get(f"{prefect_server}/health", timeout=30).json() is True
    assert httpx.post(f"{prefect_server}/flows/count", json={}, timeout=30).status_code == 401
