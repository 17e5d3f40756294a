"""How fast does live mode put detector frames on the map, and what does each update cost the browser?

**Pipeline.** For each frame size, a map is stored in a SimpleTiledServer (temp dir) the way
the flows store one: a dataset whose metadata carries its ``PreprocessParams`` (size = the frame
side), an untrained VAE of that image size (``core.models.checkpoint.save_model``; weights don't change
the arithmetic), a PCA fitted on random clustered latents and an HDBSCAN clustering of it. Real
frames (the colloid series in ``../shared/data``, else the demo frames) are cropped to a square
and resized to the side, then replayed by ``streaming.simulator.replay_zmq`` into the real
``LivePipeline`` (ZMQ listener -> ``LiveOperator`` -> Tiled table + websocket), read by a
``websockets`` client in this process. Each frame's send time (the simulator's progress callback)
and receive time (its batch arriving at the client) are recorded per index, with
``time.perf_counter`` in this one process. The operator runs with ``max_batch`` 32 and 1:

- **sustained**: every frame sent as fast as possible; frames / (last received - first sent);
- **latency**: frames sent at half the slower mode's sustained rate; p50/p90/p99 of received - sent.

Every frame is counted (sent, received over the websocket, stored in the Tiled table); a lost,
duplicated or gap-reported frame makes the script exit non-zero after printing the table.

**Browser.** A local page (temp dir) loads plotly.js (the ``plotly`` package's) and
``assets/live.js``, with a ``.ms-map`` graph (``--base-points``: a scattergl map of that many
points under the live ones). ``window.WebSocket`` is replaced by a stub before live.js runs, so
result batches (encoded by ``streaming.messages.encode_batch``) are handed to live.js's own
``onmessage`` and go through its real path (``receive`` -> ``deliver`` -> ``apply``: decode,
fold all but the newest 2,000 into the density, one ``Plotly.redraw`` in the next animation
frame) with no network. N points are preloaded (batches of 10,000), then 50 batches of 32 are
applied one by one (fewer once a case has run ``--browser-budget`` seconds), each timed with
``performance.now()`` until live.js is done (the next macrotask) and until the next
``requestAnimationFrame`` (drawing included). Naive: ``Plotly.react`` of the whole figure (the
same three traces, new arrays of N + 32 points) per update, JSON transfer and parsing not counted.
The last column checks what the page holds: points sent / drawn as points / folded / colours.

**Replay.** A session of ``--replay`` points is written to a SimpleTiledServer; a Flask server
on 127.0.0.1 serves the app's replay route (``app.live.register_routes``) and a page with
live.js, which is configured for replay; timed in the page from the choice to every point on
the map (one request: the whole table as typed arrays).

    .venv/bin/python bench/live.py                 # 64, 128, 512 px; 1k and 100k points
    .venv/bin/python bench/live.py --quick         # fewer frames and updates (~1 min)
    .venv/bin/python bench/live.py --sizes 512 --frames 128 --no-browser
    .venv/bin/python bench/live.py --no-pipeline --base-points 0 50000   # browser rows and replay only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import plotly
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.results import datasets  # noqa: E402
from core.data.results.clusterings import write_clustering  # noqa: E402
from core.data.results.latents import write_latents  # noqa: E402
from core.data.results.projections import write_projection  # noqa: E402
from core.models.checkpoint import save_model  # noqa: E402
from core.maps.clustering import cluster_hdbscan  # noqa: E402
from core.maps.encode import encode_images  # noqa: E402
from core.models.vae import VAE, VAEConfig  # noqa: E402
from core.data.preprocess import PreprocessParams  # noqa: E402
from core.maps.projection import Projector  # noqa: E402
from core.data.store import Store  # noqa: E402
from streaming.messages import ResultBatch, decode_message, encode_batch  # noqa: E402
from streaming.operator import LiveModel  # noqa: E402
from streaming.pipeline import LiveConfig, LivePipeline  # noqa: E402
from streaming.simulator import replay_zmq  # noqa: E402
from headless_chromium import launch_chromium  # noqa: E402

REAL_FRAMES = ROOT.parent / "shared/data/colloids_bulk_water/frames.npz"
DEMO_FRAMES = ROOT / "app/demo_data/colloids_brightfield.npz"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data/plotly.min.js"
LIVE_JS = ROOT / "assets/live.js"
TOKEN = "bench-live-token-0123456789"
ANCHOR_S_PER_512 = 0.05  # the anchor's GPU figure: seconds per 512² frame, one at a time
PRELOAD_CHUNK = 10_000  # points per preload message


# -- pipeline ------------------------------------------------------------------------------------
def load_frames(path: Path, size: int, n: int) -> np.ndarray:
    """(n, size, size) uint8: centre squares of the series resized to ``size``, cycled to n."""
    raw = np.load(path)["frames"][: max(n, 1)]  # (T, H, W) uint8
    h, w = raw.shape[1:3]
    side = min(h, w)
    square = raw[:, (h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
    x = torch.from_numpy(np.ascontiguousarray(square)).float()[:, None]  # (T, 1, side, side)
    mode = {"mode": "area"} if size <= side else {"mode": "bilinear", "align_corners": False}
    x = F.interpolate(x, size=(size, size), **mode)[:, 0].round().clamp(0, 255)
    x = x.to(torch.uint8).numpy()
    return np.ascontiguousarray(np.resize(x, (n, size, size)))


def build_map(store: Store, size: int, latent_dim: int, seed: int = 0) -> tuple[str, str]:
    """A stored map for ``size`` px frames; returns (projection_id, clustering_id)."""
    rng = np.random.default_rng(seed)
    params = PreprocessParams(size=size)
    # No images: the live path reads only the dataset's preprocessing.
    dataset_id = store.put(datasets.KIND, metadata={"name": f"bench {size}px", "kind": "images",
                                                    datasets.PREPROCESS: asdict(params)})
    torch.manual_seed(seed)
    model = VAE(VAEConfig(image_size=size, latent_dim=latent_dim)).eval()
    model_id = save_model(store, model, metadata={"dataset_id": dataset_id})
    centres = rng.normal(scale=4.0, size=(8, latent_dim))
    mu = (centres[rng.integers(0, 8, 2000)] + rng.normal(size=(2000, latent_dim))).astype(np.float32)
    ids = {"dataset_id": dataset_id, "model_id": model_id}
    ids["latents_id"] = write_latents(store, mu, np.zeros_like(mu), ids)
    projector = Projector("pca")
    embedding = projector.fit_transform(mu)
    projection_id = write_projection(store, embedding, projector, {**ids, "n": len(mu)})
    clusters = cluster_hdbscan(embedding, min_cluster_size=20)
    clustering_id = write_clustering(
        store, clusters.labels, clusters.probabilities,
        {**ids, "projection_id": projection_id,
                  "params": {"space": "projection", "min_cluster_size": 20, "min_samples": None}})
    return projection_id, clustering_id


@dataclass
class Run:
    """One replay through the pipeline."""

    size: int
    max_batch: int
    rate: float | None  # frames per second asked of the simulator; None: as fast as possible
    sent: int
    received: int
    stored: int
    problems: list[str]
    fps: float
    latency_ms: np.ndarray  # (n,) received - sent, per frame
    frames_per_batch: float
    backpressure: int


async def stream(live: LiveModel, store: Store, frames: np.ndarray, *, max_batch: int,
                 rate: float | None, timeout: float) -> Run:
    """Replay ``frames`` through a fresh pipeline; time every frame from send to receipt."""
    from websockets.asyncio.client import connect

    config = LiveConfig(projection_id=live.ids["projection_id"],
                        clustering_id=live.ids["clustering_id"], source="tcp://127.0.0.1:*",
                        ws_port=0, max_batch=max_batch)
    pipeline = await LivePipeline.create(config, store=store, token=TOKEN, roots=[], live=live)
    await pipeline.start()
    n = len(frames)
    sent_at, got_at = np.full(n, np.nan), np.full(n, np.nan)
    copies = np.zeros(n, np.int64)
    problems: list[str] = []

    def on_sent(done: int, total: int) -> None:
        sent_at[done - 1] = time.perf_counter()  # frame done-1 has just left the simulator

    async def read(ws) -> None:
        async for text in ws:
            now = time.perf_counter()
            message = decode_message(text)
            if message["type"] == "batch":
                index = message["index"]
                got_at[index] = now
                np.add.at(copies, index, 1)
                problems.extend(f"frame {e['index']}: {e['reason']}" for e in message["errors"])
            elif message["type"] == "gap":
                problems.append(f"gap: batches {message['first_seq']}..{message['last_seq']}")
            elif message["type"] == "end":
                return

    try:
        async with connect(pipeline.websocket.url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": TOKEN}))
            await ws.recv()  # hello
            reader = asyncio.create_task(read(ws))
            sent = await asyncio.to_thread(replay_zmq, frames, pipeline.info["source"], rate=rate,
                                           progress=on_sent, timeout=timeout)
            try:
                await asyncio.wait_for(reader, timeout)
            except TimeoutError:
                problems.append(f"no end-of-stream within {timeout:g} s")
    finally:
        stats = await pipeline.stop()
    received = int((copies > 0).sum())
    if received < n:
        problems.append(f"{n - received} frames never received (first {np.flatnonzero(copies == 0)[:5].tolist()})")
    if (copies > 1).any():
        problems.append(f"{int((copies > 1).sum())} frames received more than once")
    if stats["stored_rows"] != n:
        problems.append(f"{stats['stored_rows']} rows stored in Tiled for {n} frames")
    ok = copies > 0
    span = np.nanmax(got_at) - np.nanmin(sent_at) if ok.any() else float("nan")
    return Run(size=frames.shape[1], max_batch=max_batch, rate=rate, sent=sent, received=received,
               stored=stats["stored_rows"], problems=problems, fps=received / span,
               latency_ms=1000 * (got_at[ok] - sent_at[ok]),
               frames_per_batch=stats["processed"] / max(stats["batches"], 1),
               backpressure=stats["backpressure"])


async def bench_size(store: Store, size: int, n: int, args: argparse.Namespace) -> list[Run]:
    """Sustained rate batched and one at a time, then latency at half the slower rate."""
    projection_id, clustering_id = await asyncio.to_thread(build_map, store, size, args.latent_dim)
    live = await asyncio.to_thread(LiveModel.from_store, store, projection_id, clustering_id,
                                   device=args.device)
    frames = load_frames(args.data, size, n)
    for batch in (32, 1):  # warm-up: the first forward pass of each shape is slow
        images = np.zeros((batch, size, size), np.float32)
        await asyncio.to_thread(encode_images, live.model, images, batch_size=batch)
    runs = []
    for max_batch in (32, 1):
        runs.append(await stream(live, store, frames, max_batch=max_batch, rate=None,
                                 timeout=args.timeout))
        print(f"  {size}px max_batch {max_batch:>2}: {runs[-1].fps:.1f} frames/s sustained", flush=True)
    rate = args.paced_rate or 0.5 * min(r.fps for r in runs)
    paced = frames[: int(np.clip(rate * args.paced_seconds, 10, n))]
    for max_batch in (32, 1):
        runs.append(await stream(live, store, paced, max_batch=max_batch, rate=rate,
                                 timeout=args.timeout))
        p50, p95 = np.percentile(runs[-1].latency_ms, [50, 95])
        print(f"  {size}px max_batch {max_batch:>2}: p50 {p50:.0f} ms, p95 {p95:.0f} ms at "
              f"{rate:.1f} frames/s", flush=True)
    return runs


def pipeline_table(runs: list[Run]) -> str:
    rows = ["| frame | operator | mode | frames | frames/s | ms/frame | frames/batch | "
            "p50 ms | p90 ms | p99 ms | sent/received/stored |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        mode = "as fast as possible" if r.rate is None else f"paced {r.rate:.1f}/s"
        p50, p90, p99 = (np.percentile(r.latency_ms, q) if len(r.latency_ms) else float("nan")
                         for q in (50, 90, 99))
        operator = "batched (max 32)" if r.max_batch > 1 else "one at a time"
        per_frame = f"{1000 / r.fps:.1f}" if r.rate is None else "–"  # paced: the pace, not the cost
        rows.append(f"| {r.size}² | {operator} | {mode} | {r.sent} | {r.fps:.1f} | "
                    f"{per_frame} | {r.frames_per_batch:.1f} | {p50:.0f} | {p90:.0f} | "
                    f"{p99:.0f} | {r.sent}/{r.received}/{r.stored} |")
    return "\n".join(rows)


def bench_pipeline(args: argparse.Namespace) -> list[Run]:
    """Every size through a SimpleTiledServer in a temp dir (started outside the event loop)."""
    from tiled.server import SimpleTiledServer

    async def sizes(store: Store) -> list[Run]:
        runs = []
        for size, n in zip(args.sizes, args.frames):
            runs += await bench_size(store, size, n, args)
        return runs

    with tempfile.TemporaryDirectory(prefix="bench-live-tiled-") as directory:
        server = SimpleTiledServer(directory=directory, api_key="benchkey0123")
        try:
            store = Store.from_uri(server.uri.split("?")[0], api_key=server.api_key, project="bench")
            return asyncio.run(sizes(store))
        finally:
            server.close()


# -- browser -------------------------------------------------------------------------------------
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>
/* A stand-in for the browser's WebSocket: the bench hands messages to live.js's onmessage. */
window.WebSocket = class {{
  constructor(url) {{ this.url = url; window.__socket = this; setTimeout(() => this.onopen && this.onopen(), 0); }}
  send() {{}}
  close() {{}}
}};
</script>
<script src="{plotly}"></script>
<script src="{live}"></script>
</head><body>
<div id="live-status"></div>
<div class="ms-map"><div id="graph" style="width: 1000px; height: 700px"></div></div>
<script>
const LAYOUT = {{margin: {{l: 40, r: 10, t: 10, b: 30}}, dragmode: "lasso", showlegend: false}};
const gd = document.getElementById("graph");
const macrotask = () => new Promise(done => {{
  const channel = new MessageChannel();
  channel.port1.onmessage = () => done();
  channel.port2.postMessage(0);
}});
const frame = () => new Promise(done => requestAnimationFrame(() => done()));
const points = () => Number(document.getElementById("live-status").dataset.points || 0);

/* live.js: preload messages (untimed), then each update timed through live.js's onmessage. */
/* The map under the live points: ``base`` points of one scattergl trace, as a map panel draws them. */
function baseMap(base) {{
  if (!base) {{ return []; }}
  const x = new Float32Array(base), y = new Float32Array(base);
  for (let i = 0; i < base; i++) {{ x[i] = 3 * Math.sin(i * 12.9898) ; y[i] = 3 * Math.cos(i * 78.233); }}
  return [{{type: "scattergl", mode: "markers", name: "map", x, y, marker: {{size: 4, color: "#999"}}}}];
}}
window.benchLive = async function (preload, updates, budgetMs, base) {{
  await Plotly.newPlot(gd, baseMap(base), LAYOUT);
  window.morphoLive.configure({{mode: "live", ws_url: "ws://bench/", token: "t", session: "bench", dims: 2}});
  await macrotask();
  for (const text of preload) {{ window.__socket.onmessage({{data: text}}); await macrotask(); }}
  await frame();
  const times = [], start = performance.now();
  for (const text of updates) {{
    const t0 = performance.now();
    window.__socket.onmessage({{data: text}});
    await macrotask();
    const t1 = performance.now();
    await frame();
    times.push([t1 - t0, performance.now() - t0]);
    if (performance.now() - start > budgetMs) {{ break; }}
  }}
  await frame();
  const held = window.morphoLive.summary();
  return {{times, points: points(), drawn: held.drawn, folded: held.folded, colours: held.colours}};
}};

/* Naive: the whole figure again (same traces as live.js, new arrays) with Plotly.react. */
function figure(x, y, index) {{
  return [
    {{type: "scattergl", mode: "markers", name: "live frames", meta: "live", x, y, customdata: index,
      hovertemplate: "live frame %{{customdata}}<extra></extra>",
      marker: {{color: index, colorscale: "Viridis", size: 7, line: {{width: 1, color: "#222"}},
               colorbar: {{title: {{text: "live frame"}}, x: 1.02, len: 0.5, y: 0.25}}}}}},
    {{type: "scattergl", mode: "markers", meta: "live-start", x: x.slice(0, 1), y: y.slice(0, 1),
      marker: {{symbol: "star", size: 14, color: "#2ca02c"}}}},
    {{type: "scattergl", mode: "markers", meta: "live-end", x: x.slice(-1), y: y.slice(-1),
      marker: {{symbol: "x", size: 14, color: "#d62728"}}}},
  ];
}}
window.benchReact = async function (preload, updates, budgetMs, base) {{
  let [x, y, index] = preload;
  await Plotly.newPlot(gd, baseMap(base).concat(figure(x, y, index)), LAYOUT);
  await frame();
  const times = [], start = performance.now();
  for (const [bx, by, bi] of updates) {{
    const t0 = performance.now();
    x = x.concat(bx); y = y.concat(by); index = index.concat(bi);
    await Plotly.react(gd, baseMap(base).concat(figure(x, y, index)), LAYOUT);
    const t1 = performance.now();
    await frame();
    times.push([t1 - t0, performance.now() - t0]);
    if (performance.now() - start > budgetMs) {{ break; }}
  }}
  const live = gd.data.find(t => t.meta === "live");
  return {{times, points: index.length, drawn: live.x.length, folded: 0, colours: live.marker.color.length}};
}};
</script></body></html>
"""


def batch_message(seq: int, first: int, xy: np.ndarray) -> str:
    """A websocket batch message of points ``first ..`` at ``xy``, as the pipeline encodes it."""
    n = len(xy)
    batch = ResultBatch(seq=seq, index=np.arange(first, first + n), patch=np.full(n, -1, np.int32),
                        row=np.arange(first, first + n), source=["bench"] * n,
                        images=np.zeros((n, 1, 1), np.float32),  # not sent to the browser
                        coords=xy.astype(np.float32), cluster=np.zeros(n, np.int32),
                        non_equilibrium=np.full(n, np.nan), received=np.full(n, time.time()),
                        processed=time.time(), timings={})
    return encode_batch(batch, session="bench", stored_seq=seq)


def browser():
    """Headless Chromium as the browser tests launch it."""
    return launch_chromium(timeout=600)


def bench_browser(args: argparse.Namespace) -> tuple[list[dict], str]:
    """ms per update with N points on the live trace: live.js (extendTraces) vs Plotly.react."""
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-live-page-") as directory:
        page = Path(directory) / "live.html"
        page.write_text(PAGE.format(plotly=PLOTLY_JS.as_uri(), live=LIVE_JS.as_uri()))
        driver = browser()
        try:
            version = driver.capabilities.get("browserVersion", "?")
            for base, n in ((base, n) for base in args.base_points for n in args.points):
                xy = rng.normal(size=(n + 32 * args.updates, 2)).astype(np.float32)
                starts = range(0, n, PRELOAD_CHUNK)
                preload = [batch_message(k, s, xy[s:min(s + PRELOAD_CHUNK, n)])
                           for k, s in enumerate(starts)]
                firsts = range(n, n + 32 * args.updates, 32)
                updates = [batch_message(len(preload) + k, s, xy[s:s + 32]) for k, s in enumerate(firsts)]
                columns = [xy[:, 0].tolist(), xy[:, 1].tolist(), list(range(len(xy)))]
                naive_preload = [c[:n] for c in columns]
                naive_updates = [[c[s:s + 32] for c in columns] for s in firsts]
                cases = [("live.js: newest points + folded density", "benchLive", (preload, updates))]
                if not args.no_naive:
                    cases.append(("naive: Plotly.react of the figure", "benchReact", (naive_preload, naive_updates)))
                for name, script, data in cases:
                    driver.get(page.as_uri())
                    out = driver.execute_async_script(
                        f"const done = arguments[arguments.length - 1];"
                        f"window.{script}(arguments[0], arguments[1], arguments[2], arguments[3]).then(done);",
                        *data, 1000 * args.browser_budget, base)
                    times = np.array(out["times"])
                    expected = n + 32 * len(times)
                    if out["points"] != expected or out["drawn"] + out["folded"] != expected:
                        raise SystemExit(f"{name}: the page took {out['points']} of {expected} points, "
                                         f"drew {out['drawn']} and folded {out['folded']}")
                    results.append({"n": n, "base": base, "approach": name, "updates": len(times),
                                    "call_ms": float(np.median(times[:, 0])),
                                    "frame_ms": float(np.median(times[:, 1])),
                                    "p90_ms": float(np.percentile(times[:, 1], 90)),
                                    "held": (expected, out["drawn"], out["folded"], out["colours"])})
                    print(f"  {base:,} map + {n:,} live points, {name}: {results[-1]['frame_ms']:.1f} ms per update", flush=True)
        finally:
            driver.quit()
    return results, version


REPLAY_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="plotly.js"></script><script src="live.js"></script></head><body>
<div id="live-status"></div>
<div class="ms-map"><div id="graph" style="width: 1000px; height: 700px"></div></div>
<script>
/* From the choice of a stored session to all its points on the map, timed in the page. */
window.benchReplay = async function (session, n, token) {
  const gd = document.getElementById("graph");
  await Plotly.newPlot(gd, [], {margin: {l: 40, r: 10, t: 10, b: 30}, showlegend: false});
  const t0 = performance.now();
  window.morphoLive.configure({mode: "replay", session, token, dims: 2});
  while (Number(document.getElementById("live-status").dataset.points || 0) < n) {
    await new Promise(done => requestAnimationFrame(done));
    if (performance.now() - t0 > 120000) { break; }
  }
  return {seconds: (performance.now() - t0) / 1000, summary: window.morphoLive.summary()};
};
</script></body></html>
"""


def store_session(store: Store, n: int, rng: np.random.Generator):
    """A stored live session of ``n`` points at N(0, 1) positions, batches of 32 at 50 frames/s,
    appended as the operator appends (in bigger pieces); its :class:`LiveSession`."""
    from core.live.session import LiveSession

    live = LiveSession.create(store, n_components=2, metadata={})
    for first in range(0, n, 20_000):
        k = np.arange(first, min(first + 20_000, n))
        xy = rng.normal(size=(len(k), 2)).astype(np.float32)
        live.append_points({"index": k, "patch": np.full(len(k), -1), "source": ["bench"] * len(k),
                            "batch": k // 32, "row": k, "x": xy[:, 0], "y": xy[:, 1],
                            "cluster": np.zeros(len(k), int), "non_equilibrium": np.full(len(k), np.nan),
                            "received": 1e9 + k / 50, "processed": 1e9 + k / 50})
    return live


def bench_replay(n: int) -> dict:
    """Seconds from choosing a stored session of ``n`` points to all of them on the map: the
    app's replay route (``app.live.register_routes``) reading a SimpleTiledServer's table, served
    by Flask on 127.0.0.1, fetched and drawn by live.js in headless Chromium."""
    import threading
    from types import SimpleNamespace

    from flask import Flask, send_file
    from tiled.server import SimpleTiledServer
    from werkzeug.serving import make_server

    from app.live import register_routes

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-live-replay-") as directory:
        tiled = SimpleTiledServer(directory=directory, api_key="benchkey0123")
        http = None
        try:
            store = Store.from_uri(tiled.uri.split("?")[0], api_key=tiled.api_key, project="bench")
            t0 = time.perf_counter()
            live = store_session(store, n, rng)
            write_s = time.perf_counter() - t0
            app = Flask("bench-replay")
            register_routes(app, SimpleNamespace(token=TOKEN), lambda: store)
            app.add_url_rule("/", "page", lambda: REPLAY_PAGE)
            app.add_url_rule("/plotly.js", "plotly", lambda: send_file(PLOTLY_JS))
            app.add_url_rule("/live.js", "live", lambda: send_file(LIVE_JS))
            http = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=http.serve_forever, daemon=True).start()
            driver = browser()
            try:
                driver.get(f"http://127.0.0.1:{http.server_port}/")
                out = driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "window.benchReplay(arguments[0], arguments[1], arguments[2]).then(done);", live.id, n, TOKEN)
            finally:
                driver.quit()
        finally:
            if http is not None:
                http.shutdown()
            tiled.close()
    s = out["summary"]
    if s["shown"] != n or s["drawn"] + s["folded"] != n:
        raise SystemExit(f"replay: {s['shown']} of {n} points shown ({s['drawn']} drawn, {s['folded']} folded)")
    print(f"  replay of {n:,} points: {out['seconds']:.2f} s (table written in {write_s:.1f} s)", flush=True)
    return {"n": n, "seconds": out["seconds"], "drawn": s["drawn"], "folded": s["folded"]}


def browser_table(results: list[dict]) -> str:
    rows = ["| map points | live points | approach | updates | ms per update (call) | "
            "ms per update (to next frame) | p90 ms (to next frame) | points sent / drawn / folded / colours |",
            "|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in results:
        rows.append(f"| {r['base']:,} | {r['n']:,} | {r['approach']} | {r['updates']} | {r['call_ms']:.1f} | "
                    f"{r['frame_ms']:.1f} | {r['p90_ms']:.1f} | {'/'.join(f'{v:,}' for v in r['held'])} |")
    return "\n".join(rows)


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 512], help="frame sides")
    parser.add_argument("--frames", type=int, nargs="+",
                        help="frames per sustained run, one count or one per size "
                             "(default 256, 64 for sides over 256; a quarter with --quick)")
    parser.add_argument("--paced-rate", type=float,
                        help="frames/s of the latency runs (default half the slower sustained rate)")
    parser.add_argument("--paced-seconds", type=float, default=6.0,
                        help="length of each latency run (at least 10 frames)")
    parser.add_argument("--points", type=int, nargs="*", default=[1_000, 100_000],
                        help="points already on the live trace")
    parser.add_argument("--base-points", type=int, nargs="+", default=[0],
                        help="points of the map under the live points (one browser case each)")
    parser.add_argument("--no-naive", action="store_true", help="skip the Plotly.react comparison")
    parser.add_argument("--updates", type=int, default=50, help="batches of 32 points per browser case")
    parser.add_argument("--browser-budget", type=float, default=15.0,
                        help="seconds per browser case; fewer updates are timed past it")
    parser.add_argument("--quick", action="store_true",
                        help="a quarter of the frames, --paced-seconds 4 --updates 20")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-pipeline", action="store_true", help="browser rows only")
    parser.add_argument("--replay", type=int, nargs="*", default=[100_000],
                        help="points of a stored session replayed onto the map (none: skip)")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--device", default="cpu", help="torch device for the model (auto, cpu, cuda)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a replay may take")
    parser.add_argument("--data", type=Path, default=REAL_FRAMES if REAL_FRAMES.exists() else DEMO_FRAMES)
    args = parser.parse_args()
    if args.frames is None:
        args.frames = [(256 if side <= 256 else 64) // (4 if args.quick else 1) for side in args.sizes]
    if args.quick:
        args.paced_seconds, args.updates = 4.0, 20
    if len(args.frames) == 1:
        args.frames = args.frames * len(args.sizes)
    if len(args.frames) != len(args.sizes):
        parser.error(f"--frames gives {len(args.frames)} counts for {len(args.sizes)} sizes")

    import logging

    logging.basicConfig(level=logging.WARNING)
    load0 = os.getloadavg()
    print(f"torch {torch.__version__} ({args.device}, {torch.get_num_threads()} threads), "
          f"{os.cpu_count()} CPUs, load average {load0[0]:.2f}; frames from {args.data}", flush=True)
    t0 = time.perf_counter()
    runs = [] if args.no_pipeline else bench_pipeline(args)
    browser_results, version = ([], "") if args.no_browser else bench_browser(args)
    replays = [bench_replay(n) for n in ([] if args.no_browser else args.replay)]
    load1 = os.getloadavg()

    print(f"\n{platform.processor() or platform.machine()}, nproc={os.cpu_count()}, python "
          f"{platform.python_version()}, torch {torch.__version__} on {args.device}; load average "
          f"{load0[0]:.2f} -> {load1[0]:.2f}; {time.perf_counter() - t0:.0f} s in all\n")
    if runs:
        print(pipeline_table(runs))
    single_512 = [r for r in runs if r.size == 512 and r.max_batch == 1 and r.rate is None]
    if single_512:
        s = 1 / single_512[0].fps
        print(f"\n512² one at a time: {s:.3f} s per frame; anchor {ANCHOR_S_PER_512} s (GPU): "
              f"ours / anchor = {s / ANCHOR_S_PER_512:.2f}")
    if browser_results:
        print(f"\nChromium {version} headless (SwiftShader), plotly.js 4.1.1\n")
        print(browser_table(browser_results))
    if replays:
        print("\n| stored points | replay: choice to all on the map (s) | drawn as points / folded |\n|---:|---:|---|")
        for r in replays:
            print(f"| {r['n']:,} | {r['seconds']:.2f} | {r['drawn']:,} / {r['folded']:,} |")
    lost = [f"{r.size}px max_batch {r.max_batch} rate {r.rate}: {p}" for r in runs for p in r.problems]
    if lost:
        sys.exit("FRAMES NOT ACCOUNTED FOR:\n" + "\n".join(lost))


if __name__ == "__main__":
    main()
