"""assets/live.js alone in headless Chromium, fed batches built here (no pipeline, no app): older
points fold into the density and leave memory, batches that arrive together are drawn once, and
the backlog a batch reports is shown."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import plotly
import pytest

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
    arriving together are drawn in one redraw; a batch's backlog is shown until it clears."""
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
    assert s["kept"] <= 4000, s