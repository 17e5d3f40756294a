"""The project's flows as deployments, served by a worker process (`morphospace worker`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from prefect.runner import Runner

from flows.build_map import build_map_flow
from flows.calibrate import calibrate_flow
from flows.cluster import cluster_flow
from flows.encode import encode_flow
from flows.gan_map import gan_map_flow
from flows.ingest import ingest_flow
from flows.project import project_flow
from flows.simulate_ch import simulate_ch_flow
from flows.simulate_xpcs import simulate_xpcs_flow
from flows.synthesis import evaluate_samplers_flow, train_flow_matching_flow, train_latent_diffusion_flow
from flows.train_xpcs import train_xpcs_flow
from flows.names import DEPLOYMENT
from flows.train import train_vae_flow
from flows.train_gan import train_gan_flow
from flows.variations import sample_variations_flow

log = logging.getLogger(__name__)

FLOWS = {f.name: f for f in (ingest_flow, train_vae_flow, encode_flow, project_flow, cluster_flow, build_map_flow,
                             sample_variations_flow, train_gan_flow, calibrate_flow, gan_map_flow,
                             simulate_xpcs_flow, train_xpcs_flow, simulate_ch_flow, train_flow_matching_flow,
                             train_latent_diffusion_flow, evaluate_samplers_flow)}


def worker_name() -> str:
    """This worker's name in Prefect, unique across machines: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def serve_flows(*, limit: int = 2, poll_seconds: float = 2.0) -> None:
    """Serve every flow until SIGINT or SIGTERM; at most ``limit`` runs at once on this worker,
    asking for new runs every ``poll_seconds``.

    Any number of workers, on any machines, may serve the same deployments: the server hands
    each run to exactly one (its PENDING transition is granted once). On SIGINT or SIGTERM the
    worker ends its runs before exiting; runs send heartbeats, and the automation of
    :mod:`flows.zombies` marks a run CRASHED when its worker dies without ending it (SIGKILL).
    """
    from flows.zombies import HEARTBEAT_SECONDS, ensure_zombie_automation

    ensure_zombie_automation()
    name = worker_name()
    # As prefect.serve does, but other workers serve the same deployments: never pause them on exit.
    runner = Runner(name=name, limit=limit, query_seconds=poll_seconds, heartbeat_seconds=HEARTBEAT_SECONDS,
                    pause_on_shutdown=False)
    for f in FLOWS.values():
        runner.add_deployment(f.to_deployment(name=DEPLOYMENT))
    log.info("worker %s serving %d flows, %d runs at once", name, len(FLOWS), limit)
    asyncio.run(_run_until_signal(runner))


async def _run_until_signal(runner: Runner) -> None:
    """Run ``runner`` until SIGINT/SIGTERM, then stop it from its own event loop.

    (Prefect 3.8's own SIGTERM handler stops the runner from another loop and exits before its
    runs are ended; on SIGINT the runner exits without ending them either.)
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    runner.handle_sigterm = lambda *_: loop.call_soon_threadsafe(stop.set)  # Runner.start installs this one
    task = asyncio.create_task(runner.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if stopped.done():
        if runner.started:
            log.info("stopping: cancelling this worker's runs")
            await runner.astop()  # each run: its process killed, its state CANCELLED "Runner is shutting down."
        else:
            task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
