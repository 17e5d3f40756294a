"""Soak: live mode for a configurable time at 50 frames/s with a beamline's faults; nothing lost.

What runs, all real and on 127.0.0.1:

* **Tiled**: a ``SimpleTiledServer`` in this process, on a fixed port, with a data folder (it
  persists across restarts). The map (an untrained VAE of ``--side`` px, a PCA, an HDBSCAN
  clustering; ``bench/live.py``'s ``build_map``) is stored there first.
* **Detector**: ``streaming.simulator.replay_tiled`` appends real frames (the colloid series,
  resized to ``--side``) at ``--rate`` to a growing array in Tiled, in a thread. Frames that land
  in Tiled survive an operator crash; a ZMQ source cannot give that (PUSH/PULL has no
  acknowledgement: frames in a stopping operator's socket buffer are gone).
* **Operator**: ``morphospace live PROJECTION --source tiled+http://... --session S --resume
  --ws-port P`` as a child process (its memory is what is watched).
* **Client**: a websocket client that does what the page does for gaps: it keeps points by
  frame index, and after a reconnect or a
  ``gap`` message reads the batches it missed from the session's Tiled table (column ``batch``)
  once ``stored_seq`` says they are stored. On a ``hello`` whose ``next_seq`` is not above the
  batches it holds, those batches were never stored (an operator killed after sending them) and
  will be numbered again: it forgets their numbers (their points stay, keyed by index).
* **Page** (``--page``): besides the client, ``assets/live.js`` in headless Chromium on a page
  with the map, reaching the operator through a TCP relay that drops the network for it, and
  filling gaps through the app's own route (``bench/soak_page.py``).

Faults, at fixed fractions of ``--seconds``: websocket drops (the client aborts its TCP
connection without a close handshake and stays away ``--drop-seconds``; the page's relay resets
its connection and refuses it as long; 5 an hour, at least
``--min-drops``; a drop waits for a live connection), one operator restart at 35 % (SIGTERM, an
orderly stop; ``--kill``: SIGKILL, a crash) and, once the operator is back, one Tiled restart at
65 % (server closed, down ``--tiled-down`` s, started again on the same port and folder).
``--in-process`` runs the operator in this process instead (what the test does: a restart then
skips a new interpreter and loading the model; memory is then the whole process's).

Afterwards: every frame written to Tiled is in the session's points table exactly once; the
client holds every frame (over the websocket or gap-filled); the operator's memory (RSS, sampled
every second) grows less than 10 % from the end of its warm-up (``--warmup`` s after it is ready,
default a quarter of the run) to its last samples, per operator process (the least sample of the
first tenth after warm-up against the least of the last tenth). With ``--page``, also:
the page holds every stored point once (the rows live.js noted, gap filling included, against
the table's; after a crash, points the restarted operator sends again are held once and
counted as ``repeats``), its JS heap (after a forced garbage collection, every 5 s) grows less than 10 %
(floors: the least sample of the first and of the last tenth, as for the operator's memory)
from the end of its warm-up (the operator's, or later: once live.js holds as many points as it
ever will, ``PAGE_FULL``) to its last samples, and a lasso around every point is
answered (the app's selection, folded live points included) within 1 s of the mouse's release,
with every frame and every map point in it. Exit status 1 when a check fails.

Run it (from the repository root)::

    .venv/bin/python bench/soak.py --seconds 120
    .venv/bin/python bench/soak.py --seconds 120 --page       # with live.js in Chromium
    .venv/bin/python bench/soak.py --seconds 3600 --side 128 --json soak.json   # the record
    .venv/bin/python bench/soak.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.live import DEMO_FRAMES, REAL_FRAMES, build_map, load_frames  # noqa: E402
from core.data.store import Store  # noqa: E402
from core.live.session import LiveSession  # noqa: E402
from streaming.messages import decode_message  # noqa: E402
from streaming.simulator import replay_tiled  # noqa: E402

DROPS_PER_HOUR = 5  # the figure for a beamline's network
MAX_GROWTH = 0.10  # memory growth allowed after warm-up
LASSO_S = 1.0  # the bound on a lasso's answer
PAGE_SAMPLE_S = 5.0  # seconds between samples of the page's heap (each forces a collection)
PAGE_WINDOW = 2000  # newest points live.js draws as points (its WINDOW); older ones it folds
PAGE_FULL = 2 * PAGE_WINDOW  # points live.js has received when its arrays reach their bound
RESTART_AT = {"operator": 0.35, "tiled": 0.65}  # fractions of the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Cycled:
    """A real series repeated to ``n`` frames without copying it (an hour at 50/s at 128 px
    would be 3 GB)."""

    def __init__(self, base: np.ndarray, n: int):
        self.base, self.shape = base, (n, *base.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.base[i % len(self.base)]


class Tiled:
    """A SimpleTiledServer that can be restarted on the same port and folder."""

    def __init__(self, directory: Path, api_key: str):
        self.directory, self.api_key, self.port = directory, api_key, free_port()
        self.server = None
        self.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        from tiled.server import SimpleTiledServer

        from app.tiled_server import serialize_table_access

        # As the app's embedded server does: the page's and the client's gap-filling reads of the
        # live table come while the operator appends. Unserialised, a run with the page at load 9
        # lost a 32-row append that the server had answered (DuckDB's "closed pending query
        # result" and "No active transaction, cannot commit" in its error.log).
        serialize_table_access()
        self.server = SimpleTiledServer(directory=self.directory, api_key=self.api_key,
                                        port=self.port)

    def stop(self) -> None:
        self.server.close()
        self.server = None


class Operator:
    """``morphospace live`` as a child process; each start is one incarnation with its memory."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.process: subprocess.Popen | None = None
        self.runs: list[dict] = []  # per incarnation: ready time, memory samples, final line

    async def start(self, timeout: float) -> str:
        return await asyncio.to_thread(self._start, timeout)

    def _start(self, timeout: float) -> str:
        """Start it and wait for its ready line; returns the websocket URL."""
        ready, url = threading.Event(), {}
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                        stderr=log, text=True, cwd=ROOT)
        run = {"pid": self.process.pid, "ready": None, "rss": [], "last_line": ""}
        self.runs.append(run)

        def read(stdout) -> None:
            for line in stdout:
                log.write(line)
                log.flush()
                run["last_line"] = line.strip()
                if line.startswith("live session") and "browsers on " in line:
                    url["ws"] = line.split("browsers on ")[1].split()[0]
                    run["ready"] = time.monotonic()
                    ready.set()

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the live operator was not ready within {timeout:g} s; see {self.log_path}")
        return url["ws"]

    def sample(self) -> None:
        run = self.runs[-1] if self.runs else None
        if run and run["ready"] is not None and self.process.poll() is None:
            rss = rss_bytes(self.process.pid)
            if rss is not None:
                run["rss"].append((time.monotonic() - run["ready"], rss))

    async def stop(self, kill: bool = False) -> int:
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, 60)


class InProcessOperator:
    """The same pipeline in this process (``--in-process``): the map is loaded once, so a
    restart costs what the app's warm standby costs (no interpreter, torch or model load).
    A restart is an orderly stop; memory is this whole process's (Tiled server and client too)."""

    def __init__(self, config, store: Store, api_key: str, token: str):
        self.config, self.store, self.api_key, self.token = config, store, api_key, token
        self.live, self.pipeline = None, None
        self.stats: list[dict] = []  # each incarnation's final counters
        self.runs: list[dict] = [{"pid": os.getpid(), "ready": None, "rss": [], "last_line": ""}]

    async def start(self, timeout: float) -> str:
        from streaming.pipeline import LivePipeline, prepare_map

        if self.live is None:
            _, self.live = await prepare_map(None, self.config, store=self.store)
        self.pipeline = await LivePipeline.create(self.config, store=self.store, token=self.token,
                                                  roots=[], api_key=self.api_key, live=self.live)
        await self.pipeline.start()
        if self.runs[0]["ready"] is None:
            self.runs[0]["ready"] = time.monotonic()
        return self.pipeline.websocket.url

    def sample(self) -> None:
        run = self.runs[0]
        if run["ready"] is not None:
            run["rss"].append((time.monotonic() - run["ready"], rss_bytes(os.getpid())))

    async def stop(self, kill: bool = False) -> int:
        if kill:
            raise ValueError("--kill needs the operator in its own process (drop --in-process)")
        stats = await self.pipeline.stop()
        self.stats.append({k: stats[k] for k in ("processed", "skipped", "stored_rows",
                                                 "store_failures", "duplicates_avoided",
                                                 "backpressure", "max_queue")})
        self.runs[0]["last_line"] = (f"processed {stats['processed']} images, {stats['errors']} "
                                     f"errors, {stats['stored_rows']} rows stored")
        return 0


class GapFillingClient:
    """What the page does with the live websocket (see the module docstring)."""

    def __init__(self, url: str, token: str, session: LiveSession):
        self.url, self.token, self.session = url, token, session
        self.points: dict[int, tuple[float, float]] = {}  # frame index -> map position
        self.seqs: set[int] = set()  # batch numbers held (over the socket or from the table)
        self.top = -1  # highest batch number known to exist
        self.stored_seq = -1
        self.via_socket = self.filled = self.connections = self.renumbered = 0
        self.arrivals: dict[int, float] = {}  # frame index -> epoch seconds it reached us
        self.changed = asyncio.Event()
        self.ws = None
        self.away_until = 0.0
        self.connected = asyncio.Event()  # set from a hello until the connection goes

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``: reconnect whenever the connection goes."""
        from websockets.asyncio.client import connect

        while not stop.is_set():
            try:
                async with connect(self.url, max_size=None, open_timeout=5) as ws:
                    self.ws = ws
                    await ws.send(json.dumps({"type": "auth", "token": self.token}))
                    self.connections += 1
                    async for text in ws:
                        await self._receive(decode_message(text))
            except Exception as exc:  # noqa: BLE001  gone or not up yet: try again
                if not _closed(exc):
                    raise
            self.ws = None
            self.connected.clear()
            try:  # the server may be restarting, or the network out
                await asyncio.wait_for(stop.wait(), max(0.2, self.away_until - time.monotonic()))
            except TimeoutError:
                pass

    def drop(self, seconds: float = 0.0) -> bool:
        """Cut the connection as a network would (no close handshake), and stay away
        ``seconds`` (an outage: batches sent meanwhile must come from the table)."""
        if self.ws is None:
            return False
        self.away_until = time.monotonic() + seconds
        self.ws.transport.abort()
        return True

    async def _receive(self, message: dict) -> None:
        kind = message["type"]
        if kind == "hello":
            stale = {s for s in self.seqs if s >= message["next_seq"]}
            if stale:  # sent by an operator that died before storing them: numbered again
                self.renumbered += len(stale)
                self.seqs -= stale
            self.top = max(self.top, message["next_seq"] - 1)
            self.stored_seq = message["stored_seq"]
            self.connected.set()
            await self.fill()
        elif kind == "batch":
            now = time.time()
            for i, (x, y) in zip(message["index"].tolist(), message["coords"][:, :2].tolist()):
                self.points[i] = (x, y)
                self.arrivals.setdefault(i, now)
            self.seqs.add(message["seq"])
            self.top = max(self.top, message["seq"])
            self.stored_seq = message["stored_seq"]
            self.via_socket += message["n"]
            if self.missing():
                await self.fill()
        elif kind == "gap":
            self.top = max(self.top, message["last_seq"])
        self.changed.set()

    def missing(self) -> list[int]:
        if len(self.seqs) == self.top + 1:  # seqs holds only numbers up to top: none missing
            return []
        return sorted(set(range(self.top + 1)) - self.seqs)

    async def fill(self, everything: bool = False) -> None:
        """Read missing batches that are stored from the table (``everything``: whatever the
        table holds that we lack, for the end of the run)."""
        wanted = set(self.missing())
        if not wanted and not everything:
            return
        try:
            table = await asyncio.to_thread(self.session.columns, "points",
                                            ["index", "batch", "x", "y"])
        except Exception:  # noqa: BLE001  Tiled restarting: the next batch or hello tries again
            return
        take = (np.ones(len(table["batch"]), bool) if everything
                else np.isin(table["batch"], sorted(wanted)))
        for i, seq, x, y in zip(*(table[c][take].tolist() for c in ("index", "batch", "x", "y"))):
            if i not in self.points:
                self.filled += 1
                self.points[i] = (x, y)
            self.seqs.add(seq)
            self.top = max(self.top, seq)


def _closed(exc: BaseException) -> bool:
    """Whether an exception means "the connection is gone or not there yet"."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    return isinstance(exc, (OSError, TimeoutError, ConnectionClosed, InvalidHandshake))


def drop_times(args: argparse.Namespace) -> list[float]:
    """Websocket drops spread over the run (as fractions of it), away from the restarts."""
    n = max(args.min_drops, round(DROPS_PER_HOUR * args.seconds / 3600))
    times = [(k + 1) / (n + 1) for k in range(n)]
    return sorted(f + 0.1 if min(abs(f - r) for r in RESTART_AT.values()) < 0.05 else f
                  for f in times)


def growth(samples: list[tuple[float, int]], warmup: float) -> dict:
    """The memory floor after warm-up vs the floor at the end: the least sample in the first and
    in the last tenth (3 samples at least) of the samples after warm-up. Floors, because memory
    saws between collections: one sample at warm-up may be a peak (an hour's page heap compared
    so read +1.1 % while its floor rose 13.5 %)."""
    after = [rss for t, rss in samples if t >= warmup]
    if len(after) < 4:
        return {"warm_mib": None, "end_mib": None, "growth": None, "samples": len(samples)}
    k = max(3, len(after) // 10)
    warm, end = min(after[:k]), min(after[-k:])
    return {"warm_mib": round(warm / 2**20, 1), "end_mib": round(end / 2**20, 1),
            "growth": round(end / warm - 1, 4), "samples": len(samples)}


async def soak(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="morphospace-soak-"))
    api_key, token = secrets.token_hex(16), secrets.token_urlsafe(24)
    project, session_id = f"soak{uuid.uuid4().hex[:6]}", f"soak-{uuid.uuid4().hex[:8]}"
    clock = time.monotonic()
    tiled = await asyncio.to_thread(Tiled, workdir / "tiled", api_key)
    store = Store.from_uri(tiled.uri, api_key=api_key, project=project)
    projection_id, clustering_id = await asyncio.to_thread(build_map, store, args.side, args.latent_dim)
    n = int(args.rate * args.seconds)
    data = REAL_FRAMES if REAL_FRAMES.exists() else DEMO_FRAMES
    frames = Cycled(load_frames(data, args.side, min(n, 300)), n)
    from tiled.client import from_uri

    detector = from_uri(tiled.uri, api_key=api_key).create_container(f"detector-{project}")
    source = f"tiled+{tiled.uri}/metadata/detector-{project}/frames"
    ws_port = free_port()
    page = cutter = None
    if args.page:
        from bench.soak_page import SocketCutter, SoakPage

        cutter = SocketCutter(ws_port)
        await cutter.start()
        current = {"projection_id": projection_id, "clustering_id": clustering_id, "n_components": 2}
        page = await asyncio.to_thread(SoakPage, store, current, token)
    setup_s = time.monotonic() - clock

    env = {**os.environ, "MORPHOSPACE_TILED_URI": tiled.uri, "MORPHOSPACE_TILED_API_KEY": api_key,
           "MORPHOSPACE_PROJECT": project, "MORPHOSPACE_LIVE_TOKEN": token,
           "MORPHOSPACE_DATA_DIR": str(workdir / "data"), "MORPHOSPACE_DEVICE": args.device,
           "PYTHONPATH": str(ROOT)}
    if args.in_process:
        from streaming.pipeline import LiveConfig

        config = LiveConfig(projection_id=projection_id, clustering_id=clustering_id,
                            source=source, session=session_id, resume=True, ws_port=ws_port,
                            device=args.device)
        operator = InProcessOperator(config, store, api_key, token)
    else:
        operator = Operator([sys.executable, "-m", "app.cli", "live", projection_id,
                             "--clustering", clustering_id, "--source", source, "--session",
                             session_id, "--resume", "--ws-port", str(ws_port)],
                            env, workdir / "operator.log")

    stop_sim, first_block = threading.Event(), threading.Event()
    written = {"n": 0, "at": {}}

    def progress(done: int, total: int) -> None:
        now = time.time()
        for i in range(written["n"], done):
            written["at"][i] = now
        written["n"] = done
        first_block.set()

    simulator = asyncio.create_task(asyncio.to_thread(
        replay_tiled, frames, detector, "frames", rate=args.rate, block=args.block,
        progress=progress, stop=stop_sim))
    await asyncio.to_thread(first_block.wait)  # the operator's source must exist
    t0 = time.monotonic()
    url = await operator.start(args.start_timeout)
    startup_s = [time.monotonic() - t0]
    session = LiveSession.open(store, session_id)
    client = GapFillingClient(url, token, session)
    stop_client = asyncio.Event()
    client_task = asyncio.create_task(client.run(stop_client))
    heap: list[tuple[float, int, int]] = []  # (seconds since the page went live, JS heap bytes, points)
    if page is not None:
        await asyncio.to_thread(page.go_live, cutter.url, token, session_id)
        page_ready = time.monotonic()

    log: list[dict] = []
    start = time.monotonic()

    async def at(fraction: float) -> float:
        """Wait for a fault's scheduled time; the time it actually came (restarts take a while)."""
        await asyncio.sleep(max(0.0, start + fraction * args.seconds - time.monotonic()))
        return round(time.monotonic() - start, 1)

    def note(entry: dict) -> None:
        log.append(entry)
        print(f"  t={entry['t']:>7.1f} s  {entry['fault']}", flush=True)

    async def drops() -> None:
        for fraction in drop_times(args):
            t = await at(fraction)
            # A drop hits a live connection: while the operator restarts there is none.
            await asyncio.wait_for(client.connected.wait(), args.start_timeout)
            entry = {"t": t, "fault": "websocket drop", "cut": client.drop(args.drop_seconds)}
            if cutter is not None:
                await asyncio.wait_for(cutter.connected.wait(), args.start_timeout)
                entry["page_cut"] = cutter.drop(args.drop_seconds)
            note(entry)

    async def restarts() -> None:
        """One after the other: an operator starting while Tiled is down could not load its map."""
        t = await at(RESTART_AT["operator"])
        t1 = time.monotonic()
        rc = await operator.stop(kill=args.kill)
        await operator.start(args.start_timeout)
        startup_s.append(time.monotonic() - t1)
        note({"t": t, "fault": f"operator restart ({'SIGKILL' if args.kill else 'orderly'})",
              "exit": rc, "down_s": round(time.monotonic() - t1, 1)})
        t = await at(RESTART_AT["tiled"])
        await asyncio.to_thread(tiled.stop)
        await asyncio.sleep(args.tiled_down)  # the outage itself: nothing to await
        t1 = time.monotonic()
        await asyncio.to_thread(tiled.start)
        note({"t": t, "fault": "Tiled restart",
              "down_s": round(args.tiled_down + time.monotonic() - t1, 1)})

    async def sample_memory(done: asyncio.Event) -> None:
        next_heap = time.monotonic()
        while not done.is_set():
            operator.sample()
            if page is not None and time.monotonic() >= next_heap:
                next_heap += PAGE_SAMPLE_S
                t, held = time.monotonic() - page_ready, (await asyncio.to_thread(page.summary))["held"]
                heap.append((t, await asyncio.to_thread(page.heap), held))
            try:
                await asyncio.wait_for(done.wait(), 1.0)
            except TimeoutError:
                pass

    sampling_done = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(sampling_done))
    await asyncio.gather(drops(), restarts())
    try:  # the detector ends by itself after rate × seconds frames, on its schedule
        await asyncio.wait_for(asyncio.shield(simulator),
                               start + args.seconds + args.drain_timeout - time.monotonic())
    except TimeoutError:  # Tiled never came back: stop, and the checks say what is missing
        stop_sim.set()
        await simulator
    total = written["n"]

    # Drain: until the client holds every frame written (gap filling included) or the timeout.
    deadline = time.monotonic() + args.drain_timeout
    while len(client.points) < total and time.monotonic() < deadline:
        client.changed.clear()
        try:
            await asyncio.wait_for(client.changed.wait(), 1.0)
        except TimeoutError:
            await client.fill(everything=True)  # nothing arrives: the table may hold the rest
    drained_s = round(time.monotonic() - start - args.seconds, 1)
    page_held, deadline = None, time.monotonic() + args.drain_timeout
    while page is not None:  # then the page, which says nothing when it changes: asked each second
        page_held = await asyncio.to_thread(page.summary)
        if page_held["held"] >= total or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    page_drained_s = round(time.monotonic() - start - args.seconds, 1)
    # The check is the first lasso's; a second one says how much of it was a first call's cost.
    lassos = [await asyncio.to_thread(page.lasso_everything) for _ in range(2)] if page is not None else None
    sampling_done.set()
    await sampler
    stop_client.set()
    client.drop()
    await client_task
    rc = await operator.stop()
    await client.fill(everything=True)

    index = session.columns("points", ["index"])["index"]
    counts = np.bincount(index, minlength=total) if len(index) else np.zeros(total, int)
    latency = np.array([client.arrivals[i] - written["at"][i] for i in client.arrivals
                        if i in written["at"]])
    warmup = args.warmup if args.warmup is not None else 0.25 * args.seconds
    memory = [{**growth(r["rss"], min(warmup, 0.5 * (r["rss"][-1][0] if r["rss"] else 0))),
               "pid": r["pid"]} for r in operator.runs]
    checks = {
        "every frame in Tiled exactly once": bool(len(counts) == total and (counts == 1).all()),
        "every frame at the client": set(client.points) == set(range(total)),
        "operator memory growth < 10 %": all(m["growth"] is not None and m["growth"] < MAX_GROWTH
                                             for m in memory),
    }
    page_result = None
    if page is not None:
        rows = session.columns("points", ["row"])["row"]
        noted = {r for a, b in page_held["rows"] for r in range(a, b)}
        full = next((t for t, _, held in heap if held >= PAGE_FULL), 0.0)
        page_memory = growth([(t, b) for t, b, _ in heap],
                             max(full, min(warmup, 0.5 * (heap[-1][0] if heap else 0))))
        page_result = {"held": page_held["held"], "drawn": page_held["drawn"],
                       "folded": page_held["folded"], "row_runs": len(page_held["rows"]),
                       "repeats": page_held["repeats"], "state": page_held["state"],
                       "rows_not_on_page": sorted(set(rows.tolist()) - noted)[:20],
                       "connections": cutter.connections, "drain_s": page_drained_s,
                       "heap_mib": [(round(t), round(b / 2**20, 2), held) for t, b, held in heap],
                       "memory": page_memory, "lasso": lassos[0], "second_lasso": lassos[1]}
        lasso = lassos[0]
        # repeats: points sent again by a restarted operator, which the page held once
        checks["every frame on the page once"] = bool(
            page_held["held"] == total and noted == set(rows.tolist()) and len(rows) == total)
        checks["page memory growth < 10 %"] = (page_memory["growth"] is not None
                                               and page_memory["growth"] < MAX_GROWTH)
        checks["lasso answered within 1 s, every frame in it"] = bool(
            lasso["answer_ms"] < 1000 * LASSO_S and lasso["live"] == total
            and lasso["map"] == len(page.embedding) and lasso["drawn_live"] == min(PAGE_WINDOW, total))
        await asyncio.to_thread(page.close)
        await cutter.stop()
    result = {
        "seconds": args.seconds, "rate": args.rate, "side": args.side, "frames_written": total,
        "rows_in_tiled": int(len(index)), "duplicates_in_tiled": int((counts > 1).sum()),
        "missing_in_tiled": int((counts == 0).sum()), "client_points": len(client.points),
        "via_socket": client.via_socket, "gap_filled": client.filled,
        "renumbered_batches": client.renumbered, "connections": client.connections,
        "faults": log, "operator_startup_s": [round(s, 1) for s in startup_s],
        "memory": memory, "drain_s": drained_s, "setup_s": round(setup_s, 1),
        "latency_s": {q: round(float(np.percentile(latency, int(q[1:]))), 3)
                      for q in ("p50", "p95")} if len(latency) else {},
        "operator": "in-process" if args.in_process else "child process", "operator_exit": rc,
        "operator_stats": getattr(operator, "stats", None), "operator_last_line": operator.runs[-1]["last_line"],
        "load_average": os.getloadavg(), "checks": checks, "page": page_result,
        "workdir": str(workdir),
    }
    await asyncio.to_thread(tiled.stop)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="length of the stream (default 120)")
    parser.add_argument("--rate", type=float, default=50, help="frames per second (default 50)")
    parser.add_argument("--side", type=int, default=64, help="frame and model size in px (default 64)")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--block", type=int, default=50,
                        help="frames in the detector array's first write (its chunk length)")
    parser.add_argument("--min-drops", type=int, default=2, help="websocket drops at least (default 2)")
    parser.add_argument("--drop-seconds", type=float, default=1.0,
                        help="how long each websocket drop keeps the client away (default 1)")
    parser.add_argument("--kill", action="store_true", help="restart the operator with SIGKILL (a crash)")
    parser.add_argument("--tiled-down", type=float, default=2.0, help="seconds Tiled stays down")
    parser.add_argument("--warmup", type=float, help="seconds after an operator is ready before "
                        "its memory is the reference (default a quarter of --seconds)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the operator in this process (quick restarts; the test uses it)")
    parser.add_argument("--page", action="store_true",
                        help="also live.js in headless Chromium: every frame on the page, its heap, a lasso")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--drain-timeout", type=float, default=60)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    print(f"soak: {args.seconds:g} s at {args.rate:g} frames/s, {args.side} px", flush=True)
    result = asyncio.run(soak(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    failed = [name for name, ok in result["checks"].items() if not ok]
    for name in failed:
        print(f"FAILED: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
