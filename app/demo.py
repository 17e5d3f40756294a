"""`morphospace demo`: every service on this machine, the demo map built once, the app served.

Starts (as child processes, each only when no URL for it is configured) Tiled and a Prefect
server, then always a worker and the web app. The first start builds the demo map from the
colloid frames shipped in ``app/demo_data``; later starts find it in Tiled and reuse it.
Ctrl-C or SIGTERM stops every child.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import webbrowser
from pathlib import Path

from app.ports import PortTaken, port_in_use, taken_message
from app.prefect_server import prefect_env, prefect_server
from app.services import Child, HttpService, ServiceError, Supervisor, free_port, python_module, wait_until
from core.settings import Settings

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
DEMO_FILE = DEMO_DIR / "colloids_brightfield.npz"
DEMO_GENERATOR = DEMO_DIR / "colloids_vae.pt"  # trained by `python -m app.demo_generator`
DEMO_TAG = "demo"
DEMO_CH_TAG = "demo-cahn-hilliard"  # `demo --cahn-hilliard`: its own map, found by its own tag


def demo_params(settings: Settings, init_model_id: str | None = None):
    from core.data.preprocess import PreprocessParams
    from flows.params import BuildMapParams, ClusterOptions, IngestParams, ProjectOptions, TrainOptions

    return BuildMapParams(
        ingest=IngestParams(
            source=str(DEMO_FILE),
            name="Colloids in water, bright field (100 px patches of 50 frames)",
            preprocess=PreprocessParams(size=64, patch_size=100),
        ),
        # base_channels=16: ~3.5 s an epoch on 2 CPU cores (32 takes ~13 s), so the demo is ready in minutes;
        # started from the shipped generator, its decoded variations show particles from the first start.
        train=TrainOptions(latent_dim=16, base_channels=16, epochs=settings.demo_epochs, batch_size=64,
                           init_model_id=init_model_id),
        project=ProjectOptions(method=settings.demo_projection, n_neighbors=15, min_dist=0.1),
        cluster=ClusterOptions(min_cluster_size=20),
        tag=DEMO_TAG,
    )


def demo_ch_params(settings: Settings):
    """The Cahn–Hilliard demo: 5 φ0 × 4 χ runs × 24 snapshots = 480 frames of 64 px, so the map's
    structure is physics: time (spinodal → coarsening), composition and interaction. Measured on 2
    loaded CPU cores: simulation 3 s, 20 epochs 85 s, UMAP (numba compiling) 110 s; ready ~4 min
    after the start."""
    from flows.params import BuildMapParams, ClusterOptions, ProjectOptions, SimulateCHParams, TrainOptions

    return BuildMapParams(
        simulate=SimulateCHParams(phis=[0.3, 0.35, 0.4, 0.45, 0.5], chis=[2.6, 2.8, 3.0, 3.2], n_snapshots=24),
        train=TrainOptions(latent_dim=16, base_channels=16, epochs=settings.demo_epochs, batch_size=32),
        project=ProjectOptions(method=settings.demo_projection, n_neighbors=15, min_dist=0.1),
        cluster=ClusterOptions(min_cluster_size=15),
        tag=DEMO_CH_TAG,
    )


def tiled_server(sup: Supervisor, settings: Settings) -> HttpService:
    """The embedded Tiled server on a free port; call ``.start()`` then ``.wait()``."""

    def launch(port: int) -> Child:
        return sup.start("tiled", python_module(
            "app.tiled_server", "--directory", str(settings.data_dir / "tiled"), "--port", str(port),
            "--api-key-file", str(settings.api_key_file),
        ))

    return HttpService(sup, launch, lambda port: f"http://127.0.0.1:{port}/healthz", host="127.0.0.1",
                       port=free_port(), setting="the Tiled port")


def web_app(sup: Supervisor, settings: Settings) -> HttpService:
    """`morphospace serve` on ``settings.port`` (or a free port when that one is taken and the
    user did not name it); call ``.start()`` then ``.wait()``."""
    return HttpService(
        sup, lambda port: sup.start("web", python_module("app.cli", "serve", "--port", str(port))),
        lambda port: f"http://{settings.host}:{port}/", host=settings.host, port=settings.port,
        setting="--port", named="port" in settings.model_fields_set,
    )


def start_services(sup: Supervisor, settings: Settings) -> tuple[str, str]:
    """Tiled and Prefect URLs: the configured ones, or embedded servers started side by side."""
    tiled = None if settings.tiled_uri else tiled_server(sup, settings).start()
    prefect = None if settings.prefect_api_url else prefect_server(sup, settings).start()
    # Both start at once: their start-ups overlap.
    tiled_uri = settings.tiled_uri or f"http://127.0.0.1:{tiled.wait(timeout=120)}/api/v1"
    prefect_url = settings.prefect_api_url or f"http://{settings.host}:{prefect.wait(timeout=180)}/api"
    return tiled_uri, prefect_url


def find_demo_map(settings: Settings, tag: str = DEMO_TAG) -> str | None:
    from core.data.store import Store

    store = Store.from_settings(settings)
    for item in store.list("clusterings"):
        if item.get("tag") == tag and item.get("complete"):
            return item["id"]
    return None


def import_demo_generator(settings: Settings) -> str | None:
    """The shipped generator as a stored model, to fine-tune rather than train from scratch; None
    (train from scratch) when the file is missing from this copy."""
    if not DEMO_GENERATOR.exists():
        log.warning("%s is missing: the demo VAE trains from scratch (its variations show no particles)",
                    DEMO_GENERATOR)
        return None
    from core.data.store import Store
    from core.models.checkpoint import file_provenance, load_file, save_model

    how = file_provenance(DEMO_GENERATOR)
    return save_model(Store.from_settings(settings), load_file(DEMO_GENERATOR), metadata={
        "name": "demo generator (shipped, colloid patches)", "tag": DEMO_TAG + "-generator",
        "source": f"app/demo_data/{DEMO_GENERATOR.name}", "trained": how,
    })


def build_demo_map(settings: Settings, *, cahn_hilliard: bool = False) -> None:
    from app.progress import follow
    from flows.submit import submit

    params = demo_ch_params(settings) if cahn_hilliard else demo_params(settings, import_demo_generator(settings))
    follow(submit("build-map", params), "demo map")


def replay_series(settings: Settings, clustering_id: str | None, *, cahn_hilliard: bool = False) -> Path:
    """What ``--simulate`` replays: the shipped colloid frames, or the Cahn–Hilliard map's own
    simulated frames, so live points land on the map shown (colloid patches would land anywhere).

    The CH frames are read once from the map's dataset into ``replay-<dataset id>.npy`` in the data
    dir (480 frames of 64², 7.9 MB); a rebuilt map has another dataset, so another file.
    """
    if not cahn_hilliard:
        return DEMO_FILE
    if clustering_id is None:
        raise ValueError("the Cahn–Hilliard demo map was not found after building it: nothing to replay")
    import numpy as np

    from core.data.results import datasets
    from core.data.store import Store

    store = Store.from_settings(settings)
    dataset_id = store.metadata("clusterings", clustering_id)["dataset_id"]
    path = settings.data_dir / f"replay-{dataset_id}.npy"
    if not path.exists():
        partial = path.with_suffix(".partial.npy")  # a stopped write never passes for the series
        np.save(partial, datasets.read_images(store, dataset_id))
        partial.replace(path)
    return path


def start_simulator(sup: Supervisor, settings: Settings, series: Path = DEMO_FILE):
    """Replay ``series`` to the live source, two frames a second, for as long as the demo runs.

    Frames wait (a few at most) until Live is switched on in the page; the simulator is not
    essential, so the demo keeps running if it stops.
    """
    return sup.start("simulator", python_module(
        "app.cli", "simulate", str(series), "--zmq", settings.live_source, "--rate", "2", "--loop",
        "--timeout", "0",
    ))


def own_ports(settings: Settings) -> Settings:
    """Refuse a port the user named that is taken (one line, before anything starts), and give
    the live source a free port of its own unless the user named one."""
    for field, setting in (("port", "--port"), ("prefect_port", "MORPHOSPACE_PREFECT_PORT")):
        port = getattr(settings, field)
        if field in settings.model_fields_set and port_in_use(settings.host, port):
            raise PortTaken(taken_message(settings.host, port, setting))
    if "live_source" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"live_source": f"tcp://{settings.host}:{free_port(settings.host)}"})


def run_demo(settings: Settings, *, open_browser: bool = True, simulate: bool = False,
             cahn_hilliard: bool = False) -> int:
    settings = own_ports(settings.model_copy(update={"data_dir": settings.data_dir.resolve()}))
    os.umask(0o077)  # what this process and its children write is this user's only
    settings.ensure_data_dir()
    settings.ensure_api_key()
    roots = [*settings.data_roots, DEMO_DIR]
    sup = Supervisor(settings.data_dir / "logs")
    sup.env.update({
        "MORPHOSPACE_DATA_DIR": str(settings.data_dir),
        "MORPHOSPACE_DATA_ROOTS": json.dumps([str(r) for r in roots]),
        "MORPHOSPACE_LIVE_SOURCE": settings.live_source,
    })
    # SIGINT too: a shell starts a background job (`morphospace demo &`) with SIGINT ignored, and
    # Python then never installs its Ctrl-C handler, so `kill -INT` would not stop the demo.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_keyboard_interrupt)
    try:
        print("Starting services (logs in %s) ..." % sup.log_dir, flush=True)
        tiled_uri, prefect_url = start_services(sup, settings)
        sup.env.update({"MORPHOSPACE_TILED_URI": tiled_uri, **prefect_env(settings, prefect_url)})
        os.environ.update(sup.env)  # this process submits the demo run too
        settings = settings.model_copy(update={"tiled_uri": tiled_uri, "prefect_api_url": prefect_url,
                                               "data_roots": roots})
        write_services_file(settings)
        worker = sup.start("worker", python_module("app.cli", "worker"))
        # The app starts meanwhile (its imports take seconds); it shows the map once stored.
        web = web_app(sup, settings).start()
        from flows.submit import deployments_registered

        wait_until(worker, deployments_registered, timeout=120)

        tag = DEMO_CH_TAG if cahn_hilliard else DEMO_TAG
        demo_map = find_demo_map(settings, tag)
        if demo_map:
            print(f"Reusing the stored demo map {demo_map}", flush=True)
        else:
            print("Building the demo map (first start only) ...", flush=True)
            build_demo_map(settings, cahn_hilliard=cahn_hilliard)
            demo_map = find_demo_map(settings, tag)

        url = f"http://{settings.host}:{web.wait(timeout=120)}"
        simulator = (start_simulator(sup, settings, replay_series(settings, demo_map, cahn_hilliard=cahn_hilliard))
                     if simulate else None)
        print(f"Morphospace is ready at {url}", flush=True)
        if simulator is not None:
            print(f"Demo frames go to {settings.live_source} at 2 a second: switch Live on in the page", flush=True)
        if open_browser:
            webbrowser.open(url)
        supervise(sup, simulator)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not orphan children
            signal.signal(sig, signal.SIG_IGN)
        sup.stop_all()
        settings.services_file.unlink(missing_ok=True)


def write_services_file(settings: Settings) -> None:
    """Where a second shell finds this demo (`morphospace ingest ... --data-dir`): URLs, no secrets."""
    settings.services_file.write_text(json.dumps({
        "tiled_uri": settings.tiled_uri, "prefect_api_url": settings.prefect_api_url,
        "live_source": settings.live_source,
    }))


def supervise(sup: Supervisor, simulator: Child | None) -> None:
    """Watch the children until interrupted; an essential one stopping ends the demo."""
    essential = [child for child in sup.children if child is not simulator]
    while True:
        for child in essential:
            if not child.alive():
                raise ServiceError(f"{child.name} stopped unexpectedly; see {child.log_path}")
        if simulator is not None and not simulator.alive():
            print(f"The simulator stopped; see {simulator.log_path}", flush=True)
            simulator = None
        time.sleep(1.0)


def _raise_keyboard_interrupt(*_) -> None:
    raise KeyboardInterrupt
