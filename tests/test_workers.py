"""Integration: two `morphospace worker` processes serving the same deployments.

Runs are spread over both; a worker stopped mid-run (SIGTERM, as systemd, Docker or Kubernetes
stop it) ends its run at once, and the same parameters then run to completion on the other
worker. Which process ran a run is read from /proc: Prefect starts each run as a child process of
its worker with PREFECT__FLOW_RUN_ID in its environment.

A worker killed outright (SIGKILL, or its node lost) cannot end its run: the heartbeat
automation of flows.zombies marks it CRASHED ~90 s later, too slow for this suite; measured by
hand (see flows/zombies.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]

PROJECT = "workers"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _runs_in_progress(worker_pids: set[int]) -> dict[str, int]:
    """{flow run id: pid of the worker whose child runs it}, for the runs running right now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            run_id = next((v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"PREFECT__FLOW_RUN_ID=")), None)
            pid = int(entry.name)
            while run_id and pid > 1 and pid not in worker_pids:
                pid = _parent(pid)
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if run_id and pid in worker_pids:
            found[run_id] = pid
    return found


def _follow(run_ids: list[str], worker_pids: set[int], *, until, timeout: float) -> dict[str, int]:
    """Poll until ``until(states)`` holds; return which worker was seen running each run."""
    from flows.submit import status

    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        seen.update(_runs_in_progress(worker_pids))
        states = {r: status(r).state for r in run_ids}
        if until(states):
            return seen
        assert time.monotonic() < deadline, f"runs still {states} after {timeout} s"
        time.sleep(0.1)


def _all_done(states: dict[str, str]) -> bool:
    return all(s in {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"} for s in states.values())


def _zombie_automations() -> list[float]:
    from prefect.client.orchestration import get_client

    from flows.zombies import AUTOMATION_NAME

    with get_client(sync_client=True) as client:
        return [a.trigger.within.total_seconds() for a in client.read_automations_by_name(AUTOMATION_NAME)]


@contextlib.contextmanager
def _other_workers_paused():
    """SIGSTOP the session's own worker (tests/conftest.py), if started, so that only ours poll."""
    others = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and _parent(int(entry.name)) == os.getpid():
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                if b"app.cli" in cmd and b"worker" in cmd:
                    others.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.fixture
def two_workers(prefect_server, tiled_server, tmp_path):
    """Two `morphospace worker --limit 1` processes, polling as the session's worker does, both ready."""
    from app.services import Supervisor, wait_until

    with _other_workers_paused():
        sup = Supervisor(tmp_path / "logs")
        sup.env.update({
            "MORPHOSPACE_TILED_URI": tiled_server.uri.split("?")[0],
            "MORPHOSPACE_TILED_API_KEY": tiled_server.api_key,
            "MORPHOSPACE_PROJECT": PROJECT,
            "OMP_NUM_THREADS": "1",  # two runs at once on few cores (see tests/conftest.py)
        })
        try:
            workers = [sup.start(f"worker-{i}", [sys.executable, "-m", "app.cli", "worker", "--limit", "1"])
                       for i in (1, 2)]
            for child in workers:
                wait_until(child, lambda c=child: "serving" in c.log_path.read_text(errors="replace"), timeout=120)
            yield workers
        finally:
            sup.stop_all()


def test_runs_spread_over_two_workers_and_a_stopped_workers_run_can_be_rerun(two_workers, tiled_server):
    from core.data.store import Store
    from flows.params import TrainParams
    from flows.submit import RunFailed, submit, wait

    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key, project=PROJECT)
    images = np.random.default_rng(0).random((64, 32, 32), dtype=np.float32)
    dataset_id = store.put("datasets", arrays={"images": images}, metadata={"name": "worker test"})
    params = TrainParams(dataset_id=dataset_id, latent_dim=2, base_channels=4, epochs=10, batch_size=32)
    pids = {child.process.pid for child in two_workers}
    assert _zombie_automations() == [90.0]  # one, however many workers created it at once


    # Two runs at once, one slot per worker: each worker runs one.
    runs = [submit("train-vae", params) for _ in range(2)]
    ran_on = _follow(runs, pids, until=_all_done, timeout=90)
    assert [wait(r, timeout=1).state for r in runs] == ["COMPLETED", "COMPLETED"]
    assert set(ran_on) == set(runs) and set(ran_on.values()) == pids, (ran_on, pids)

    # Stop the worker of a run while the run is going: the run ends at once, CANCELLED by its worker.
    run = submit("train-vae", params)
    victim = _follow([run], pids, until=lambda s: s[run] == "RUNNING" or _all_done(s), timeout=60)[run]
    stopped_at = time.monotonic()
    os.kill(victim, signal.SIGTERM)
    with pytest.raises(RunFailed, match="cancelled: Runner is shutting down"):
        wait(run, timeout=30, poll=0.2)
    took = time.monotonic() - stopped_at
    child = next(c for c in two_workers if c.process.pid == victim)
    assert child.process.wait(15) == 0
    assert took < 15, took

    # The same parameters, submitted again, complete on the other worker.
    rerun = submit("train-vae", params)
    ran_on = _follow([rerun], pids - {victim}, until=_all_done, timeout=90)
    assert wait(rerun, timeout=1).state == "COMPLETED"
    assert ran_on == {rerun: (pids - {victim}).pop()}
