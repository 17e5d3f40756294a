"""The page side of ``bench/soak.py --page``: live.js in headless Chromium, through the faults.

* **Page**: a page served by Flask on 127.0.0.1 with plotly.js, ``assets/live.js`` and the map
  (the soak's stored projection as a scattergl trace, as the app draws a map in points view),
  configured for live mode the way the app's live panel configures it. Its gap filling reads
  the app's own route (``app.live.register_routes``) from the soak's Tiled server.
* **Network**: the page reaches the operator's websocket through :class:`SocketCutter`, a TCP
  relay that can cut every connection as a network would (reset, no close handshake) and refuse
  new ones for a while: a drop the page cannot tell from a real one.
* **Lasso**: a Selenium drag (``headless_chromium.drag``, as the browser tests lasso) around
  every point; plotly's ``plotly_selected`` event goes, as Dash would pass it, to a route that
  runs the map panel's own selection (``components.map_panel.selection_from``: the drawn live
  points plus every folded one inside the lasso, read from the session's Tiled table). Timed in
  the page from the mouse's release to the answer.
* **Memory**: the page's JS heap (CDP ``Performance.getMetrics``, ``JSHeapUsedSize``) after a
  forced garbage collection, so that what is sampled is what the page holds.

Run alone, it times the lasso's server side on a session of an hour's size (no page, no
stream): ``selection_from`` over every row of a table of ``--rows`` points, against reading
the whole table (what it read before)::

    .venv/bin/python bench/soak_page.py --rows 180000
"""

from __future__ import annotations

import asyncio
import threading
import time
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.live import register_routes  # noqa: E402
from components.map_panel import selection_from  # noqa: E402
from core.data.results.projections import read_embedding  # noqa: E402
from core.data.store import Store  # noqa: E402
from core.live.session import keep_open  # noqa: E402
from headless_chromium import drag, launch_chromium, to_viewport  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIVE_JS = ROOT / "assets/live.js"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="plotly.js"></script><script src="live.js"></script></head><body>
<div id="live-status"></div>
<div class="ms-map"><div id="graph" style="width: 1000px; height: 700px"></div></div>
<script>
/* The map as the app draws it in points view (trace 0), then live mode as the app configures it. */
window.soak = {answers: [], released: null};
const gd = document.getElementById("graph");
window.soak.ready = fetch("map").then(r => r.json()).then(map => Plotly.newPlot(gd,
  [{type: "scattergl", mode: "markers", name: "map", x: map.x, y: map.y, marker: {size: 4, color: "#999"}}],
  {margin: {l: 40, r: 10, t: 30, b: 30}, dragmode: "lasso", showlegend: false})).then(() => {
  document.addEventListener("mouseup", () => { window.soak.released = performance.now(); }, true);
  /* What dcc.Graph would hand the map panel's selection callback, answered by the same function;
   * drawn_live: points of the live trace in the lasso (not the start and end markers). */
  gd.on("plotly_selected", event => {
    if (!event) { return; }
    const released = window.soak.released, selected = performance.now();
    const shown = window.morphoLive.summary().shown, drawn = gd.data.findIndex(t => t.meta === "live");
    const points = event.points.map(p => ({curveNumber: p.curveNumber, pointNumber: p.pointNumber,
                                           customdata: p.customdata, id: p.id}));
    fetch("select", {method: "POST", headers: {"Content-Type": "application/json"},
                     body: JSON.stringify({selected: {points, lassoPoints: event.lassoPoints}, shown})})
      .then(r => r.json())
      .then(answer => {
        Object.assign(answer, {answer_ms: performance.now() - released, event_ms: selected - released,
                               drawn_live: points.filter(p => p.curveNumber === drawn).length});
        window.soak.answers.push(answer);
        if (window.soak.answered) { window.soak.answered(answer); }
      });
  });
});
</script></body></html>
"""


class SocketCutter:
    """A TCP relay from the page to the operator's websocket port that can drop the network.

    :meth:`drop` resets every relayed connection on both sides (no close handshake, as when a
    cable is pulled) and refuses new ones for ``seconds``; a connection while the operator is
    down is reset too (the page sees what it would see of a stopped server: a failed socket).
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.connections = 0  # relayed to the operator
        self.away_until = 0.0
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None
        self.connected = asyncio.Event()  # set while a connection is relayed

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.away_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        self.connections += 1
        self.connected.set()

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(1 << 16):
                    sink.write(data)
                    await sink.drain()
            except (OSError, ConnectionError):
                pass
            finally:  # one side gone: the other goes too
                for w in pair:
                    w.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._pairs.discard(pair)
        if not self._pairs:
            self.connected.clear()

    def drop(self, seconds: float = 0.0) -> bool:
        """Cut every relayed connection; refuse new ones for ``seconds``. Whether one was cut."""
        self.away_until = time.monotonic() + seconds
        cut = bool(self._pairs)
        for pair in list(self._pairs):
            for w in pair:
                w.transport.abort()
        return cut

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class SoakPage:
    """The page server and headless Chromium on it (blocking calls: run them in a thread; one
    at a time, as the soak samples memory while it waits for the page)."""

    def __init__(self, store: Store, current: dict, token: str):
        from flask import Flask, jsonify, request, send_file
        from plotly import __file__ as plotly_init
        from werkzeug.serving import make_server

        embedding = read_embedding(store, current["projection_id"])  # (n, 2)
        view = {"key": current.get("clustering_id") or current["projection_id"], "kind": "points",
                "n": len(embedding), "shown": len(embedding), "dims": 2}
        app = Flask("soak-page")
        register_routes(app, SimpleNamespace(token=token), lambda: store)
        app.add_url_rule("/", "page", lambda: PAGE)
        app.add_url_rule("/plotly.js", "plotly", lambda: send_file(
            Path(plotly_init).parent / "package_data/plotly.min.js"))
        app.add_url_rule("/live.js", "live", lambda: send_file(LIVE_JS))
        app.add_url_rule("/map", "map", lambda: jsonify(
            {"x": embedding[:, 0].tolist(), "y": embedding[:, 1].tolist()}))

        def select():
            clock = time.perf_counter()
            body = request.get_json()
            shown = {"session": self.session, "upto": int(body["shown"])}
            selection = selection_from(store, current, body["selected"], view, shown) or {}
            return jsonify({"map": len(selection.get("indices", [])),
                            "live": len((selection.get("live") or {}).get("rows", [])),
                            "server_ms": 1000 * (time.perf_counter() - clock)})

        app.add_url_rule("/select", "select", select, methods=["POST"])
        self.embedding, self.session, self.store = embedding, None, store
        self.lock = threading.Lock()
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.driver = launch_chromium(timeout=120)
        self.driver.get(f"http://127.0.0.1:{self.http.server_port}/")
        self._script("return window.soak.ready.then(() => true);")
        self.driver.execute_cdp_cmd("Performance.enable", {})

    def _script(self, body: str, *args):
        """Run ``body`` (may return a promise) in the page; its value."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve((function () {{ {body} }}).apply(null, arguments)).then(done, e => done({{error: String(e)}}));",
            *args)

    def go_live(self, ws_url: str, token: str, session: str) -> None:
        """What the live panel does once the session is ready."""
        self.session = session
        keep_open(lambda: self.store, session)  # as the live panel does
        self.driver.execute_script("window.morphoLive.configure(arguments[0]);",
                                   {"mode": "live", "ws_url": ws_url, "token": token,
                                    "session": session, "dims": 2})

    def summary(self) -> dict:
        """What live.js holds and draws (``morphoLive.summary()``) and its status line's state."""
        with self.lock:
            return self.driver.execute_script(
                "return Object.assign(window.morphoLive.summary(),"
                " {state: document.getElementById('live-status').dataset.state});")

    def heap(self) -> int:
        """Bytes of JS heap in use after a full garbage collection."""
        with self.lock:
            self.driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
            metrics = self.driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
        return int(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"))

    def lasso_everything(self, timeout: float = 60) -> dict:
        """Drag a lasso around every drawn point (map and live); the answer and its timing."""
        xy = np.array(self._script(
            "const gd = document.querySelector('.ms-map .js-plotly-plot');"
            "return gd.data.filter(t => t.type === 'scattergl').flatMap(t => Array.from(t.x, (x, k) => [x, t.y[k]]));"),
            np.float64)
        (left, low), (right, high) = xy.min(axis=0), xy.max(axis=0)
        pad = 0.02 * max(right - left, high - low)
        corners = [[left - pad, low - pad], [right + pad, low - pad], [right + pad, high + pad],
                   [left - pad, high + pad]]
        self.driver.execute_script(
            "window.soak.next = new Promise(done => { window.soak.answered = done; });")
        drag(self.driver, to_viewport(self.driver, corners + [corners[0]]))
        self.driver.set_script_timeout(timeout)
        return self._script("return window.soak.next;")

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            self.http.shutdown()


def time_lasso_on_table(rows: int, repeats: int = 3) -> list[dict]:
    """ms of ``selection_from`` over every point of a stored session of ``rows`` points, and of
    reading that whole table, in a SimpleTiledServer (temp dir, table access serialised)."""
    import tempfile

    from tiled.server import SimpleTiledServer

    from app.tiled_server import serialize_table_access
    from bench.live import store_session
    from core.live.session import LiveSession

    serialize_table_access()
    rng, out = np.random.default_rng(0), []
    with tempfile.TemporaryDirectory(prefix="bench-lasso-") as directory:
        server = SimpleTiledServer(directory=directory, api_key="benchkey0123")
        try:
            store = Store.from_uri(server.uri.split("?")[0], api_key=server.api_key, project="lasso")
            live = store_session(store, rows, rng)
            lasso = {"points": [], "lassoPoints": {"x": [-9, 9, 9, -9], "y": [-9, -9, 9, 9]}}  # all of N(0, 1)
            current, view = {"projection_id": "p", "clustering_id": "c"}, {"key": "c", "kind": "points", "n": 0}
            for _ in range(repeats):
                clock = time.perf_counter()
                selection = selection_from(store, current, lasso, view, {"session": live.id, "upto": rows})
                answered = time.perf_counter()
                whole = LiveSession.open(store, live.id).points()
                out.append({"selection_ms": round(1000 * (answered - clock)),
                            "rows_selected": len(selection["live"]["rows"]),
                            "whole_table_ms": round(1000 * (time.perf_counter() - answered)),
                            "rows_read": len(whole)})
                print(out[-1], flush=True)
        finally:
            server.close()
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=time_lasso_on_table.__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=180_000, help="points in the session (an hour at 50/s)")
    time_lasso_on_table(parser.parse_args().rows)
