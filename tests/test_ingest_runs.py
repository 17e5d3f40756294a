"""Integration: ingest runs as a user meets them (the CLI, a real worker), and a dataset left
half-written by a stopped ingest refused by the flows that read it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import INTEGRATION_PROJECT
from tests.test_cli import run_cli
from core.data.results.datasets import dataset_writer

pytestmark = pytest.mark.integration


def test_train_refuses_an_interrupted_ingest(worker, tiled_server):
    """`train` on a dataset whose ingest stopped (complete=False) fails at once, saying why,
    instead of training on the part that was written (as it did before)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from app.services import wait_until
    from core.data.store import Store
    from flows.params import TrainParams
    from flows.submit import RunFailed, deployments_registered, submit, wait

    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
    writer = dataset_writer(store, metadata={"name": "stopped ingest"})
    writer.append(np.random.default_rng(0).random((300, 16, 16)))  # 300 frames in, then it stopped
    writer.abandon("MemoryError")
    wait_until(worker["child"], deployments_registered, timeout=120)
    run_id = submit("train-vae", TrainParams(dataset_id=writer.id, epochs=1))
    with pytest.raises(RunFailed, match=rf"dataset '{writer.id}' is incomplete.*Run that step again"):
        wait(run_id, timeout=120, poll=0.5)
    with get_client(sync_client=True) as client:  # refused once, not retried as a flaky read
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    assert [(r.name.split("-")[0], r.run_count) for r in runs] == [("load", 1)]
    assert not [m for m in store.list("models", incomplete=True) if m.get("dataset_id") == writer.id]


def test_cli_ingest_says_how_many_files_were_skipped_and_why(worker):
    """A folder where 2 of 5 files fail: the id on stdout, one line on stderr with the count and
    the first reasons (before, only the id: the failures were silent)."""
    from app.services import wait_until
    from flows.submit import deployments_registered

    folder = worker["roots"] / "mixed"
    folder.mkdir()
    for i in range(3):
        Image.fromarray((np.arange(256).reshape(16, 16) * (i + 1) % 256).astype(np.uint8)).save(folder / f"{i}.png")
    (folder / "corrupt.png").write_bytes(b"not a png at all")
    np.save(folder / "dot.npy", np.ones((1, 1)))
    wait_until(worker["child"], deployments_registered, timeout=120)
    result = run_cli("ingest", str(folder), "--size", "16", **worker["env"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("ds-")
    [line] = [line for line in result.stderr.splitlines() if line.startswith("morphospace ingest:")]
    assert line.startswith("morphospace ingest: skipped 2 failure(s) in 2 source(s): ")
    assert "corrupt.png" in line and "dot.npy" in line
