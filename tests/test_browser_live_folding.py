"""assets/live.js alone in headless Chromium, fed batches built here (no pipeline, no app): older
points fold into the density and leave memory, batches that arrive together are drawn once, the
backlog a batch reports is shown, and the time slider's scrub reads the session again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import pytest

from app.live import points_message
from streaming.messages import ResultBatch, encode_batch

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_JS = Path(plotly.__file__).parent / "package_data/plotly.min.js"

# live.js opens a WebSocket: a stand-in lets the test hand it messages through its own onmessage.
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>
window.WebSocket = class {
  constructor(url) { window.__socket = this; setTimeout(() => this.onopen && this.onopen(), 0); }
  send() {} close() {}
};
</script>
<script src="%s"></script><script src="%s"></script></head><body>
<div id="live-status"></div>
<div class="ms-map"><div id="graph" style="width: 600px; height: 400px"></div></div>
</body></html>"""

# Feeds every message in one task (as a burst from the socket would arrive), then waits for the
# next two animation frames; counts Plotly.redraw calls on the way.
FEED = """
const [messages, done] = [arguments[0], arguments[arguments.length - 1]];
const gd = document.getElementById('graph');
const go = window.__fed ? Promise.resolve() : Plotly.newPlot(gd, [], {}).then(() => {
    window.morphoLive.configure({mode: 'live', ws_url: 'ws://test/', token: 't', session: 's', dims: 2});
    const redraw = Plotly.redraw;
    window.__redraws = 0;
    Plotly.redraw = (...args) => { window.__redraws += 1; return redraw(...args); };
    window.__fed = true;
});
go.then(() => {
    const before = window.__redraws;
    messages.forEach(text => window.__socket.onmessage({data: text}));
    requestAnimationFrame(() => requestAnimationFrame(() => {
        const el = document.getElementById('live-status');
        const folded = gd.data.find(t => t.meta === 'live-folded');
        const cells = folded.z.flat().reduce((sum, c) => sum + (c || 0), 0);
        done({redraws: window.__redraws - before, summary: window.morphoLive.summary(), cells,
              text: el.textContent, queued: el.dataset.queued, lag: el.dataset.lag});
    }));
});
"""


# Scrubs to a fraction and waits for the next animation frame.
SCRUB = """
const done = arguments[arguments.length - 1];
window.morphoLive.scrub(arguments[0]).then(() => requestAnimationFrame(() => done(Object.assign(
    window.morphoLive.summary(), {text: document.getElementById('live-status').textContent, asked: window.__asked}))));
"""


def message(seq: int, first: int, n: int, backlog: dict | None = None) -> str:
    """A batch of points first .. first + n - 1 on a line, as the pipeline sends it."""
    index = np.arange(first, first + n)
    batch = ResultBatch(seq=seq, index=index, patch=np.full(n, -1, np.int32), row=index,
                        source=["test"] * n, images=np.zeros((n, 1, 1), np.float32),
                        coords=np.column_stack([index, index % 7]).astype(np.float32),
                        cluster=np.zeros(n, np.int32), non_equilibrium=np.full(n, np.nan),
                        received=np.full(n, time.time()), processed=time.time(), timings={})
    text = encode_batch(batch, session="s", stored_seq=seq)
    return text if backlog is None else json.dumps({**json.loads(text), "backlog": backlog})


def test_old_points_fold_bursts_draw_once_and_the_backlog_shows(browser, tmp_path):
    """2,500 points: the newest 2,000 drawn as points, 500 counted in the density; five batches
    arriving together are drawn in one redraw; a batch's backlog is shown until it clears; a
    scrub back shows the session up to an earlier batch, and forward again the newest."""
    page = tmp_path / "live.html"
    page.write_text(PAGE % (PLOTLY_JS.as_uri(), (ROOT / "assets/live.js").as_uri()))
    browser.get(page.as_uri())
    out = browser.execute_async_script(FEED, [message(0, 0, 1500), message(1, 1500, 1000)])
    assert (out["summary"]["drawn"], out["summary"]["folded"], out["cells"]) == (2000, 500, 500)

    burst = [message(2 + k, 2500 + 10 * k, 10) for k in range(4)]
    burst.append(message(6, 2540, 10, backlog={"queued": 120, "lag_s": 2.4, "bound": 1000}))
    out = browser.execute_async_script(FEED, burst)
    assert out["redraws"] == 1 and out["summary"]["shown"] == 2550 and out["cells"] == 550
    assert "behind: 120 frames queued, 2.4 s lag (holds at most 1000)" in out["text"]
    assert (out["queued"], out["lag"]) == ("120", "2.4")

    out = browser.execute_async_script(FEED, [message(7, 2550, 10, backlog={"queued": 0, "lag_s": 0.0, "bound": 1000})])
    assert "behind" not in out["text"] and out["summary"]["held"] == 2560

    # 5,000 more, far off the grid: it grows, every folded point still counted once, and the
    # page keeps at most 2 x 2,000 points in memory.
    out = browser.execute_async_script(FEED, [message(8, 2560, 5000)])
    s = out["summary"]
    assert (s["held"], s["drawn"], s["folded"], out["cells"]) == (7560, 2000, 5560, 5560)
    assert s["kept"] <= 4000 and s["capacity"] <= 8000, s

    # Scrubbed to the middle: the session up to batch round(0.5 * 8) = 4 (points 0-2529) is read
    # again through the replay route, stubbed here with the route's own message for those rows.
    k = np.arange(2530)
    table = pd.DataFrame({"index": k, "patch": -1, "batch": np.searchsorted([1500, 2500, 2510, 2520], k, "right"),
                          "row": k, "x": k.astype("float32"), "y": (k % 7).astype("float32"), "cluster": 0,
                          "non_equilibrium": np.nan, "noise_floor": np.nan, "ring": "", "source": "test",
                          "received": 1000.0 + k})
    browser.execute_script("window.__route = arguments[0]; window.fetch = url => (window.__asked = url, "
                           "Promise.resolve({ok: true, json: () => Promise.resolve(window.__route)}));",
                           points_message(table, "s", 0, 4))
    scrubbed = browser.execute_async_script(SCRUB, 0.5)
    assert scrubbed["asked"] == "live/s/points?from_batch=0&to_batch=4"
    assert (scrubbed["shown"], scrubbed["drawn"], scrubbed["folded"], scrubbed["held"]) == (2530, 2000, 530, 7560)
    assert "2530 points of 7560 (up to frame 2529" in scrubbed["text"]
    assert browser.execute_async_script(SCRUB, 1)["shown"] == 7560  # following the newest again

def test_a_restarted_operator_s_batches_are_read_anew_and_each_point_held_once(browser, tmp_path):
    """Batches 0-3 (points 0-39) came from a session process that died having stored batches 0-1
    only; its successor (started_seq 2) numbered points 20-44 as batch 2. The page reads batch 2
    anew (rows 20-39 again: held once) with the error it reported (frame 45), then batch 3
    (46-50) live."""
    page = tmp_path / "live.html"
    page.write_text(PAGE % (PLOTLY_JS.as_uri(), (ROOT / "assets/live.js").as_uri()))
    browser.get(page.as_uri())
    k = np.arange(20, 45)
    table = pd.DataFrame({"index": k, "patch": -1, "batch": 2, "row": k, "x": k.astype("float32"),
                          "y": (k % 7).astype("float32"), "cluster": 0, "non_equilibrium": np.nan,
                          "noise_floor": np.nan, "ring": "", "source": "test", "received": 1000.0 + k})
    errors = pd.DataFrame({"index": [45], "source": ["test"], "reason": ["bad shape"], "received": [1045.0],
                           "batch": [2]})
    browser.execute_script("window.__route = arguments[0]; window.fetch = url => (window.__asked = url, "
                           "Promise.resolve({ok: true, json: () => Promise.resolve(window.__route)}));",
                           points_message(table, "s", 2, 2, errors))
    hello = {"type": "hello", "session": "s", "stored_seq": -1, "next_seq": 0, "started_seq": 0}
    out = browser.execute_async_script(FEED, [json.dumps(hello)] + [message(b, 10 * b, 10) for b in range(4)])
    assert out["summary"]["held"] == 40
    again = {**hello, "stored_seq": 2, "next_seq": 3, "started_seq": 2}
    out = browser.execute_async_script(FEED, [json.dumps(again), message(3, 46, 5)])
    assert browser.execute_script("return window.__asked;") == "live/s/points?from_batch=2&to_batch=2"
    s = out["summary"]
    assert (s["held"], s["rows"], s["repeats"]) == (50, [[0, 45], [46, 51]], 20)
    assert "1 bad frames skipped" in out["text"]


# The app's map as it is while live points arrive: a scattergl trace, lasso mode, nothing
# selected. Counts WebGL buffers made and freed, and redraws, from the ``warm``-th batch on
# (the live traces' own buffers are made by then); one batch a frame, as a beamline's come.
FEED_ONE_A_FRAME = """
const [messages, warm, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const gd = document.getElementById('graph'), counts = {made: 0, freed: 0, redraws: 0, cmax: []};
for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
    const make = C.prototype.createBuffer, free = C.prototype.deleteBuffer;
    C.prototype.createBuffer = function () { counts.made += 1; return make.apply(this, arguments); };
    C.prototype.deleteBuffer = function () { counts.freed += 1; return free.apply(this, arguments); };
}
const map = {type: 'scattergl', mode: 'markers', x: [-1, 0, 1, 2], y: [0, 1, 0, 1]};
Plotly.newPlot(gd, [map], {dragmode: 'lasso', clickmode: 'event+select'}).then(async () => {
    window.morphoLive.configure({mode: 'live', ws_url: 'ws://test/', token: 't', session: 's', dims: 2});
    for (let k = 0; k < messages.length; k++) {
        if (k === warm) { Object.assign(counts, {made: 0, freed: 0, redraws: 0}); }
        window.__socket.onmessage({data: messages[k]});
        await new Promise(next => setTimeout(next, 0));  // the batch is applied, its draw asked for
        await new Promise(next => requestAnimationFrame(next));
        const live = gd.data.find(t => t.meta === 'live');
        counts.redraws += 1;
        counts.cmax.push(live.marker.cmax);
    }
    const live = gd.data.find(t => t.meta === 'live');
    done(Object.assign(counts, {newest: live.marker.color[live.marker.color.length - 1],
                                oldest: live.marker.color[0]}));
}).catch(e => done({error: String(e)}));
"""


def test_live_redraws_in_lasso_mode_free_their_webgl_buffers(browser, tmp_path):
    """60 batches of 50 points, one a frame, on a map in lasso mode with nothing selected: after
    the first 10, every WebGL buffer a redraw makes is freed again (plotly's selection layer
    kept one per trace and redraw: ~4 a redraw here). The colour is frames before the newest, on
    a bar whose range (1, 2 or 5 x 10^k) stays put once the window is full."""
    page = tmp_path / "live.html"
    page.write_text(PAGE % (PLOTLY_JS.as_uri(), (ROOT / "assets/live.js").as_uri()))
    browser.get(page.as_uri())
    out = browser.execute_async_script(FEED_ONE_A_FRAME, [message(b, 50 * b, 50) for b in range(60)], 10)
    assert out.get("redraws") == 50, out
    assert out["made"] - out["freed"] <= 2, out
    assert (out["newest"], out["oldest"]) == (0, 1999)  # the newest 2,000 points drawn, by age in frames
    assert set(out["cmax"][40:]) == {2000} and out["cmax"][0] == 50  # 50 points: 0..49, bar to 50
