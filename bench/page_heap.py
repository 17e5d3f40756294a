"""The live page's memory per frame: ``assets/live.js`` fed at speed, its JS heap and WebGL buffers.

An hour's soak (``bench/soak.py --page``) shows the page's heap over 180,000 frames at the
beamline's pace; this shows the same frames in minutes. live.js runs in headless Chromium on a
map in lasso mode (as the app's map is) and is fed batches through a stand-in for its websocket,
one batch an animation frame, built in the page (positions on a fixed figure, so the axes stay
put as the app's map's do). Every ``--step`` frames: the JS heap after a forced garbage
collection (CDP ``Performance.getMetrics``, ``JSHeapUsedSize``) and the WebGL buffers made and
freed so far.

Two runs, the same frames: live.js as it is, and with its guard on plotly's selection layer
switched off (``guardSelectionLayer``, which skips the layer's draw while nothing is selected;
off, plotly.js 4.1 keeps a WebGL buffer per scattergl trace at every redraw). Printed: every
heap sample of each run, and the buffers kept per 1,000 frames after ``--warm`` frames.

    .venv/bin/python bench/page_heap.py                      # 60,000 frames a run, ~4 min each
    .venv/bin/python bench/page_heap.py --frames 200000 --step 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headless_chromium import launch_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUARD = "function guardSelectionLayer(gd) {"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>
window.WebSocket = class {
  constructor(url) { window.__socket = this; setTimeout(() => this.onopen && this.onopen(), 0); }
  send() {} close() {}
};
window.buffers = {made: 0, freed: 0};
for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
  const make = C.prototype.createBuffer, free = C.prototype.deleteBuffer;
  C.prototype.createBuffer = function () { window.buffers.made += 1; return make.apply(this, arguments); };
  C.prototype.deleteBuffer = function () { window.buffers.freed += 1; return free.apply(this, arguments); };
}
</script>
<script src="PLOTLY"></script><script src="LIVE"></script></head><body>
<div id="live-status"></div>
<div class="ms-map"><div id="graph" style="width: 1000px; height: 700px"></div></div>
<script>
const gd = document.getElementById("graph");
let seq = 0, first = 0;
function b64(array) {
  const bytes = new Uint8Array(array.buffer); let text = "";
  for (let i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
  return btoa(text);
}
/* A batch of n points as the pipeline encodes it (streaming/messages.py). */
function batch(n) {
  const index = new Int32Array(n), xy = new Float32Array(2 * n), none = new Int32Array(n).fill(-1);
  const nan = new Float32Array(n).fill(NaN), now = new Float64Array(n).fill(Date.now() / 1000);
  for (let k = 0; k < n; k++) {
    index[k] = first + k; xy[2 * k] = 3 * Math.sin(first + k); xy[2 * k + 1] = 3 * Math.cos(1.7 * (first + k));
  }
  const spec = (dtype, array, shape) => ({dtype, bdata: b64(array), shape});
  const message = {type: "batch", session: "bench", seq, n, index: spec("i4", index, [n]),
    patch: spec("i4", none, [n]), row: spec("i4", index, [n]), coords: spec("f4", xy, [n, 2]),
    cluster: spec("i4", none, [n]), non_equilibrium: spec("f4", nan, [n]), noise_floor: spec("f4", nan, [n]),
    ring: Array(n).fill(""), received: spec("f8", now, [n]), source: Array(n).fill("bench"),
    processed: Date.now() / 1000, timings_ms: {}, errors: [], stored_seq: seq, stats: {},
    backlog: {queued: 0, lag_s: 0, bound: 1000}};
  seq += 1; first += n;
  return JSON.stringify(message);
}
window.start = async function (mapPoints) {
  const x = [], y = [];
  for (let i = 0; i < mapPoints; i++) { x.push(3 * Math.sin(i * 12.9898)); y.push(3 * Math.cos(i * 78.233)); }
  await Plotly.newPlot(gd, [{type: "scattergl", mode: "markers", name: "map", x, y, marker: {size: 4, color: "#999"}}],
                       {margin: {l: 40, r: 10, t: 30, b: 30}, dragmode: "lasso", clickmode: "event+select", showlegend: false});
  window.morphoLive.configure({mode: "live", ws_url: "ws://bench/", token: "t", session: "bench", dims: 2});
  await new Promise(next => setTimeout(next, 0));
  window.__socket.onmessage({data: JSON.stringify({type: "hello", session: "bench", next_seq: 0, started_seq: 0, stats: {}})});
};
window.feed = async function (frames, perBatch) {
  const end = first + frames;
  while (first < end) {
    window.__socket.onmessage({data: batch(perBatch)});
    await new Promise(next => setTimeout(next, 0));
    await new Promise(next => requestAnimationFrame(next));
  }
  return {frames: first, made: window.buffers.made, freed: window.buffers.freed};
};
</script></body></html>
"""


def run(live_js: Path, args: argparse.Namespace, directory: Path) -> list[dict]:
    """Samples [{frames, seconds, heap_mib, buffers_held}] of one run."""
    import plotly

    page = directory / f"{live_js.stem}.html"
    page.write_text(PAGE.replace("PLOTLY", (Path(plotly.__file__).parent / "package_data/plotly.min.js").as_uri())
                    .replace("LIVE", live_js.as_uri()))
    driver = launch_chromium(timeout=3600)
    try:
        driver.get(page.as_uri())
        driver.execute_async_script("window.start(arguments[0]).then(arguments[arguments.length - 1]);", args.map_points)
        driver.execute_cdp_cmd("Performance.enable", {})
        samples, clock = [], time.monotonic()
        while not samples or samples[-1]["frames"] < args.frames:
            out = driver.execute_async_script(
                "window.feed(arguments[0], arguments[1]).then(arguments[arguments.length - 1]);",
                args.step, args.per_batch)
            driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
            metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
            heap = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")
            samples.append({"frames": out["frames"], "seconds": round(time.monotonic() - clock, 1),
                            "heap_mib": round(heap / 2**20, 3), "buffers_held": out["made"] - out["freed"]})
            print(f"  {live_js.stem}: {samples[-1]}", flush=True)
        return samples
    finally:
        driver.quit()


def buffers_per_1000(samples: list[dict], warm: int) -> float:
    """WebGL buffers kept (made minus freed) per 1,000 frames after ``warm`` frames."""
    after = [s for s in samples if s["frames"] >= warm]
    return round(1000 * (after[-1]["buffers_held"] - after[0]["buffers_held"])
                 / max(1, after[-1]["frames"] - after[0]["frames"]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60_000, help="frames a run (default 60,000)")
    parser.add_argument("--step", type=int, default=5_000, help="frames between samples")
    parser.add_argument("--per-batch", type=int, default=10, help="frames a batch (one batch a redraw)")
    parser.add_argument("--warm", type=int, default=10_000, help="frames before growth is counted")
    parser.add_argument("--map-points", type=int, default=300)
    args = parser.parse_args()
    source = (ROOT / "assets/live.js").read_text()
    if GUARD not in source:
        raise SystemExit(f"assets/live.js has no {GUARD!r}: update this bench")
    with tempfile.TemporaryDirectory(prefix="bench-page-heap-") as directory:
        unguarded = Path(directory) / "unguarded.js"
        unguarded.write_text(source.replace(GUARD, GUARD + " return;"))
        runs = {name: run(path, args, Path(directory))
                for name, path in (("as it is", ROOT / "assets/live.js"), ("selection layer unguarded", unguarded))}
    # The heap saws (caches fill and empty, V8 ages compiled code out): every sample is printed,
    # not a slope that one drop would turn over.
    frames = [s["frames"] for s in next(iter(runs.values()))]
    print(f"\n| live.js | heap at {' / '.join(f'{f:,}' for f in frames)} frames, MiB "
          f"| WebGL buffers kept per 1,000 frames after {args.warm:,} |")
    print("|---|---|---:|")
    for name, samples in runs.items():
        heap = " / ".join(f"{s['heap_mib']:.2f}" for s in samples)
        print(f"| {name} | {heap} | {buffers_per_1000(samples, args.warm)} |")


if __name__ == "__main__":
    main()
