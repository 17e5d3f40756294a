"""How heavy is the latent map in the browser, ours vs the anchor's one trace per cluster?

For each size, a small Dash app (this process, a thread) serves the real ``MapAIO`` panel on an
in-memory store of a synthetic map (Gaussian blobs, 10 clusters, 5 % noise), and headless
Chromium (SwiftShader WebGL, the flags of headless_chromium.py) loads it. Measured, all in the page
clock (``Date.now()``):

- **bytes**: the largest response the page fetched (the callback carrying the figure), from the
  browser's resource timing, and the figure JSON as Dash serialises it;
- **drawn**: navigation start → the first ``plotly_afterplot`` of a figure with data;
- **lasso**: a lasso around ~10 % of the points, mouse release → ``plotly_selected`` in the page,
  → ``selectedData`` arriving at the server (a recorder callback), → the count line showing it;
- **zoom**: ``Plotly.relayout`` into a window of ~2 % of the points → the page drawn and quiet
  for 1 s (dcc.Graph redraws after copying the ranges into its figure; the density view fetches
  the window's points from the server).

The anchor is the MLExchange explorer's figure: one Scattergl trace per cluster, each with x and
y as Python lists padded with ``None`` to N, sent by a callback the same way.
Each run has a fresh browser and a time limit; a run past it is reported as "> limit".

    .venv/bin/python bench/map.py                       # 10k, 100k, 1M; anchor at 10k and 100k
    .venv/bin/python bench/map.py --sizes 10000 --anchor-sizes 10000 --limit 60
    .venv/bin/python bench/map.py --sizes 50000 --points-sizes 100000 300000 1000000 --anchor-sizes --repeats 1
                                        # the points view past the threshold (how it was chosen)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dash import Dash, Input, Output, dcc, html  # noqa: E402
from dash._utils import to_json  # noqa: E402

from callbacks import selection  # noqa: E402
from components import map_figure as mf  # noqa: E402
from components.ids import CLICKED, CURRENT, SELECTION  # noqa: E402
from components import map_data  # noqa: E402
from components import map_panel  # noqa: E402
from components.map_panel import MapAIO  # noqa: E402
from components.services import Services  # noqa: E402
from headless_chromium import launch_chromium  # noqa: E402

AIO = "map"

# Injected before any page script: hooks every Plotly graph's events and the count line.
PAGE_HOOKS = r"""
window.__bench = {drawn: null, up: null, selected: null, shown: null, nsel: null, afterplots: []};
document.addEventListener('mouseup', () => { window.__bench.up = Date.now(); }, true);
setInterval(() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (!gd.on || gd.__hooked) continue;
    gd.__hooked = true;
    gd.on('plotly_afterplot', () => {
      const data = gd._fullData || [];
      const drawn = data.some(t => (t._length || 0) > 2 || t.type === 'heatmap');
      if (drawn && !window.__bench.drawn) window.__bench.drawn = Date.now();
      window.__bench.afterplots.push(Date.now());
    });
    gd.on('plotly_selected', (e) => {
      window.__bench.selected = Date.now();
      window.__bench.nsel = e && e.points ? e.points.length : 0;
    });
  }
  const count = document.querySelector('.bench-count, .ms-map-count');
  if (count && !window.__bench.shown && /[1-9][0-9,]* selected/.test(count.textContent)) {
    window.__bench.shown = Date.now();
  }
}, 5);
"""

ARRIVED: dict[str, float] = {}
PAGE = {"kind": "ours", "n": 1000}  # what the next page load shows (Dash fetches the layout without the URL's query)


# -- data --------------------------------------------------------------------------------------
def synthetic_map(n: int, clusters: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float32 blobs of different spreads and (N,) labels, 5 % uniform noise labelled -1."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(clusters, 2))
    spread = rng.uniform(0.5, 1.5, size=clusters)
    labels = rng.integers(0, clusters, size=n)
    xy = centres[labels] + rng.normal(size=(n, 2)) * spread[labels, None]
    noise = rng.random(n) < 0.05
    xy[noise] = rng.uniform(-13, 13, size=(noise.sum(), 2))
    labels[noise] = -1
    return xy.astype(np.float32), labels.astype(np.int64)


class MemoryStore:
    """The part of core.data.store.Store the map panel reads (through the result owners), from memory."""

    project = "bench"

    def __init__(self):
        self.maps: dict[int, tuple[np.ndarray, np.ndarray, pd.DataFrame]] = {}

    def add(self, n: int) -> dict:
        if n not in self.maps:
            xy, labels = synthetic_map(n)
            frames = pd.DataFrame({"index": np.arange(n), "source": "synthetic", "time": np.arange(n) * 0.1})
            self.maps[n] = (xy, labels, frames)
        ids = f"n{n}"
        return {"clustering_id": f"cl-{ids}", "projection_id": f"proj-{ids}", "latents_id": f"lat-{ids}",
                "dataset_id": f"ds-{ids}", "model_id": f"m-{ids}", "n_components": 2}

    def _n(self, id: str) -> int:
        return int(id.rsplit("n", 1)[1])

    def array(self, kind, id, name, index=slice(None)):
        if name == "images":  # a frame of the dataset
            return np.random.default_rng(index).random((32, 32), dtype=np.float32)
        xy, labels, _ = self.maps[self._n(id)]
        return {"embedding": xy, "labels": labels}[name][index]

    def table(self, kind, id, name):  # the dataset's frames table
        return self.maps[self._n(id)][2]

    def metadata(self, kind, id):
        return {"name": f"synthetic {id}"}


def anchor_figure(xy: np.ndarray, labels: np.ndarray) -> dict:
    """The anchor's figure: one Scattergl per cluster, x/y as lists padded with None to N."""
    x, y = xy[:, 0].astype(float).tolist(), xy[:, 1].astype(float).tolist()
    data = []
    for c in np.unique(labels):
        member = (labels == c).tolist()
        data.append({
            "type": "scattergl", "mode": "markers", "name": f"cluster {c}",
            "x": [v if m else None for v, m in zip(x, member)],
            "y": [v if m else None for v, m in zip(y, member)],
        })
    return {"data": data, "layout": {"dragmode": "lasso", "margin": {"l": 40, "r": 10, "t": 10, "b": 30}}}


# -- the app -----------------------------------------------------------------------------------
def build_app(store: MemoryStore) -> Dash:
    app = Dash(__name__, suppress_callback_exceptions=True)
    limits = {"points_limit": mf.POINTS_LIMIT}

    def layout():
        n, kind = PAGE["n"], PAGE["kind"]
        stores = [dcc.Store(id=SELECTION), dcc.Store(id=CLICKED), html.Div(id="arrived")]
        if kind == "anchor":
            return html.Div([*stores, dcc.Store(id="anchor-n", data=n),
                             dcc.Graph(id="anchor-graph", style={"height": "70vh"}),
                             html.Div(id="anchor-count", className="bench-count")])
        return html.Div([*stores, dcc.Store(id=CURRENT, data=store.add(n)),
                         html.Div(MapAIO(aio_id=AIO), className="bench-ours")])

    app.layout = layout
    map_panel.register(app, Services.from_store(store))  # the panel's callbacks read this store
    selection.register(app)

    @app.callback(Output("anchor-graph", "figure"), Input("anchor-n", "data"))
    def _anchor(n):
        xy, labels, _ = store.maps[n]
        return anchor_figure(xy, labels)

    @app.callback(Output("anchor-count", "children"), Input("anchor-graph", "selectedData"),
                  prevent_initial_call=True)
    def _anchor_count(selected):
        ARRIVED["t"] = time.time() * 1000
        return f"{len((selected or {}).get('points') or []):,} selected"

    @app.callback(Output("arrived", "children"), Input(MapAIO.ids.graph(AIO), "selectedData"),
                  prevent_initial_call=True)
    def _arrived(selected):
        ARRIVED["t"] = time.time() * 1000
        return ""

    app.limits = limits
    return app


def serve(app: Dash) -> tuple[str, object]:
    from werkzeug.serving import make_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def browser():
    driver = launch_chromium(timeout=120)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAGE_HOOKS})
    return driver


# -- one run -----------------------------------------------------------------------------------
def lasso_square(xy: np.ndarray, fraction: float = 0.10) -> tuple[np.ndarray, int]:
    """A square around the densest cluster holding ~``fraction`` of the points, and how many it holds."""
    centre = np.median(xy[: min(len(xy), 200_000)], axis=0)
    lo, hi = 0.0, float(np.ptp(xy, axis=0).max())
    for _ in range(40):
        h = (lo + hi) / 2
        inside = int((np.abs(xy - centre) <= h).all(axis=1).sum())
        lo, hi = (h, hi) if inside < fraction * len(xy) else (lo, h)
    h = (lo + hi) / 2
    square = centre + h * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    return square, int((np.abs(xy - centre) <= h).all(axis=1).sum())


def wait(driver, condition: str, deadline: float, poll: float = 0.05):
    while time.time() < deadline:
        value = driver.execute_script(f"return {condition};")
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(condition)


def page_xy(driver, data_xy: np.ndarray) -> list[tuple[float, float]]:
    """Data coordinates → viewport pixels of the map (Selenium's pointer moves in the viewport)."""
    return driver.execute_script("""
        const gd = document.querySelector('.js-plotly-plot');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const box = gd.getBoundingClientRect();
        return arguments[0].map(([x, y]) => [box.left + xa._offset + xa.l2p(x),
                                              box.top + ya._offset + ya.l2p(y)]);
    """, data_xy.tolist())


def drag_path(driver, path: list[tuple[float, float]], step_ms: int = 40) -> None:
    """Press at the first viewport point, move through the others, release (a lasso or a box)."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver, duration=step_ms)
    actions.move_to_location(int(path[0][0]), int(path[0][1])).click_and_hold()
    for x, y in path[1:]:
        actions.move_to_location(int(x), int(y))
    actions.release().perform()


def run_one(url: str, kind: str, n: int, xy: np.ndarray, limit_s: float) -> dict:
    result = {"kind": kind, "n": n}
    driver = browser()
    watchdog = threading.Timer(limit_s + 30, driver.quit)  # a page stuck in JS blocks every command
    watchdog.start()
    deadline = time.time() + limit_s
    try:
        ARRIVED.clear()
        PAGE.update(kind=kind, n=n)
        driver.get(url)
        drawn = wait(driver, "window.__bench.drawn", deadline)
        origin = driver.execute_script("return performance.timeOrigin;")
        result["drawn_s"] = (drawn - origin) / 1000
        sizes = driver.execute_script("""
            return performance.getEntriesByType('resource')
              .filter(e => e.name.includes('_dash-update-component') || e.name.includes('_dash-layout'))
              .map(e => [e.decodedBodySize || e.encodedBodySize || 0, e.responseEnd]);""")
        biggest = max(sizes or [[0, 0]])
        result["bytes"] = biggest[0]
        result["figure_at_s"] = biggest[1] / 1000  # the figure's response complete (page clock)
        result["view"] = driver.execute_script(
            "const c = document.querySelector('.ms-map-count'); return c ? c.textContent : '';")
        square, expected = lasso_square(xy)
        result["lasso_expected"] = expected
        corners = page_xy(driver, square)
        drag_path(driver, [*corners, corners[0]])
        up = wait(driver, "window.__bench.up", deadline)
        selected = wait(driver, "window.__bench.selected", deadline)
        result["selected_s"] = (selected - up) / 1000
        result["n_selected_in_page"] = driver.execute_script("return window.__bench.nsel;")
        while "t" not in ARRIVED and time.time() < deadline:
            time.sleep(0.02)
        result["arrived_s"] = (ARRIVED["t"] - up) / 1000 if "t" in ARRIVED else None
        shown = wait(driver, "window.__bench.shown", deadline)
        result["shown_s"] = (shown - up) / 1000
        result["count"] = driver.execute_script(
            "return document.querySelector('.bench-count, .ms-map-count').textContent;")
        # Zoom into ~2 % of the points and wait until the page has drawn and stayed quiet for 1 s
        # (dcc.Graph copies the new ranges into its figure and redraws; the density view fetches
        # the window's points from the server).
        zoom = lasso_square(xy, 0.02)[0]
        start = driver.execute_script("""
            const t = Date.now();
            Plotly.relayout(document.querySelector('.js-plotly-plot'),
                            {'xaxis.range': arguments[0], 'yaxis.range': arguments[1]});
            return t;""", [float(zoom[0, 0]), float(zoom[1, 0])], [float(zoom[0, 1]), float(zoom[2, 1])])
        density = "density" in result["view"]
        while time.time() < deadline:
            last = driver.execute_script("return window.__bench.afterplots.slice(-1)[0];")
            now = driver.execute_script("return Date.now();")
            text = driver.execute_script(
                "const c = document.querySelector('.ms-map-count'); return c ? c.textContent : '';")
            if last and last > start and now - last > 1000 and (not density or "drawn here" in text):
                result["zoom_s"] = (last - start) / 1000
                break
            time.sleep(0.1)
        else:
            raise TimeoutError("the page to settle after a zoom")
        result["zoom_view"] = driver.execute_script(
            "const c = document.querySelector('.ms-map-count'); return c ? c.textContent : '';")
    except TimeoutError as exc:
        result["timeout"] = f"> {limit_s:.0f} s waiting for {exc}"
    except Exception as exc:  # the watchdog closed a stuck browser
        result["timeout"] = f"> {limit_s:.0f} s ({type(exc).__name__})"
    finally:
        watchdog.cancel()
        try:
            driver.quit()
        except Exception:
            pass
    return result


def figure_bytes(store: MemoryStore, kind: str, n: int) -> int:
    xy, labels, _ = store.maps[n]
    if kind == "anchor":
        return len(to_json(anchor_figure(xy, labels)))
    fig, _ = mf.map_figure(xy, mf.colouring("cluster", labels), uirevision="x")
    return len(to_json(fig))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--anchor-sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--points-sizes", type=int, nargs="*", default=[],
                        help="also draw these sizes as points (density view off) to find the threshold")
    parser.add_argument("--limit", type=float, default=90, help="seconds per run before giving up")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration; the best is kept")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    store = MemoryStore()
    app = build_app(store)
    url, server = serve(app)
    runs = [("ours", n, None) for n in args.sizes] + [("ours", n, "points") for n in args.points_sizes]
    runs += [("anchor", n, None) for n in args.anchor_sizes]
    results = []
    try:
        store.add(1000)
        run_one(url, "ours", 1000, store.maps[1000][0], args.limit)  # warm-up, not kept
        for kind, n, mode in runs:
            store.add(n)
            mf.POINTS_LIMIT = max(n, DEFAULT_LIMIT) if mode == "points" else DEFAULT_LIMIT
            t0 = time.perf_counter()
            tries = []
            for _ in range(args.repeats):
                map_data.clear()  # every run reads the map again, as a fresh page of the app would
                tries.append(run_one(url, kind, n, store.maps[n][0], args.limit))
                if tries[-1].get("timeout"):
                    break  # a second try would time out too
            result = best(tries)
            result["mode"] = mode or ("density" if kind == "ours" and n > DEFAULT_LIMIT else "points")
            result["figure_json_bytes"] = figure_bytes(store, kind, n)
            result["wall_s"] = round(time.perf_counter() - t0, 1)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        mf.POINTS_LIMIT = DEFAULT_LIMIT
        server.shutdown()
    print(table(results))
    print(f"\nmachine: {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, "
          f"python {platform.python_version()}, POINTS_LIMIT={DEFAULT_LIMIT:,}, "
          f"WINDOW_POINTS_CAP={mf.WINDOW_POINTS_CAP:,}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


DEFAULT_LIMIT = mf.POINTS_LIMIT
TIMES = ("figure_at_s", "drawn_s", "selected_s", "arrived_s", "shown_s", "zoom_s")


def best(tries: list[dict]) -> dict:
    """The first run's record with each time replaced by the best (smallest) over the runs."""
    result = dict(tries[0])
    for key in TIMES:
        values = [t[key] for t in tries if t.get(key) is not None]
        result[key] = min(values) if values else None
    result["runs"] = len(tries)
    return result


def table(results: list[dict]) -> str:
    def s(v):
        return "–" if v is None else f"{v:.2f}"

    rows = ["| figure | N | view | bytes | figure in s | drawn s | lasso → selected s | → server s | "
            "→ count s | zoom → settled s |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        name = "ours" if r["kind"] == "ours" else "anchor (trace per cluster)"
        rows.append(
            f"| {name} | {r['n']:,} | {r['mode']} | {max(r.get('bytes') or 0, 0) or r['figure_json_bytes']:,} | "
            f"{s(r.get('figure_at_s'))} | {s(r.get('drawn_s'))} | {s(r.get('selected_s'))} | {s(r.get('arrived_s'))} | "
            f"{s(r.get('shown_s'))} | {s(r.get('zoom_s'))} |"
            + (f" {r['timeout']}" if r.get("timeout") else ""))
    return "\n".join(rows)


if __name__ == "__main__":
    main()
