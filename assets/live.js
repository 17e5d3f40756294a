/* Live mode in the browser: points arrive over a websocket and are added to the map here.
 *
 * No server round trip per message and no re-sending of the figure: each batch is decoded
 * (base64 typed arrays, see streaming/messages.py) into growable typed arrays that hold every
 * point. The cost of an update must not grow with the points already shown (a beamtime puts
 * 100k+ frames on the map), so the page draws only the newest WINDOW points as points (hover,
 * click, lasso) and folds the older ones into a BINS x BINS count grid drawn as one heatmap
 * ("earlier live frames"; in 3-D an even sample); batches that arrive while a frame is being
 * drawn are drawn together in the next animation frame, with one Plotly.redraw. Folded points
 * are dropped from memory, so the page holds at most 2 WINDOW points whatever the session's
 * length (a beamtime's page stays open for hours). plotly.js
 * replots every trace on any data change (restyle and extendTraces alike), so the map under
 * the live points costs a constant share of each redraw (bench/README.md, live.py).
 * A batch may carry the pipeline's backlog, {queued, lag_s, bound}: the page says how far
 * behind it is. The time slider (scrub) shows the session as it was after an earlier batch,
 * read again from its Tiled table in one request (the replay route); a lasso reaches folded
 * points through the store LIVE_SHOWN ({session, upto}), which the map panel reads.
 * Batches carry a sequence number; when some were missed
 * (a dropped connection, a slow tab) the missing ones are read from the app's
 * /live/<session>/points route, which serves the session's Tiled table. Pause keeps the
 * socket open and buffers; resume applies the buffer. A closed socket reconnects with
 * exponential back-off (0.5 s doubling to 10 s), to the same address: a session process that
 * died comes back there (app/live.py); a hello from another session there ends this one.
 *
 * The page connects only once the server says the session listens (the config arrives then;
 * until then the status reads "starting…"), and authenticates with its first message,
 * {type: "auth", token}: never in the URL, which a browser prints when a socket fails.
 *
 * Each drawn live point carries, as plain JS arrays (dcc.Graph drops typed-array customdata from
 * events): customdata [row, frame], row being its image's row in the session's stored images;
 * an id "live:<session>:<row>", by which the map panel tells live points of a lasso from the
 * map's own and knows their session (components/map_panel.py); and a hover text with the
 * frame and, for two-time maps, the non-equilibrium measure, its noise floor, the verdict and
 * the ring the map averages.
 *
 * The Dash side (components/live_panel.py) only calls window.morphoLive.configure(config)
 * from a clientside callback (and standby(...) when the shown map's session process is warm); state, counters and the latest non-equilibrium measure
 * (with its floor, verdict and ring) are shown in #live-status.
 */
(function () {
    "use strict";
    const ARRAYS = {f4: Float32Array, f8: Float64Array, i4: Int32Array};
    const MAX_BACKOFF_MS = 10000;
    const END_COLOUR = "#d62728";
    // The newest WINDOW points are drawn as points (hover, click, lasso); older ones are folded
    // into a BINS x BINS count grid drawn as one heatmap and dropped from memory, so an update
    // costs the same and the page holds the same at 1k and at 100k points. 2,000 points: about
    // a minute at 30 frames/s, a few ms to rebuild per draw.
    const WINDOW = 2000;
    const BINS = 128;
    const SAMPLE_3D = 5000;  // 3-D has no heatmap: folded points are drawn as a random sample of this many
    const LIVE_SHOWN = "live-shown";  // the Dash store a lasso reads (components/ids.py)
    const COLUMNS = ["x", "y", "z", "index", "row", "patch", "measure", "floor", "time"];

    const live = {
        cfg: null, ws: null, paused: false, buffer: [], pending: Promise.resolve(),
        main: emptyLayer(), view: null, scrubs: 0, reading: false, drawRequested: false, drawn: null,
        received: -1, startedSeq: null, retries: 0, timer: null, state: "off", errors: 0, stats: {}, latest: null,
        backlog: null, standby: "", rows: [], repeats: 0,
    };

    /* The points of a session in arrival order: positions [0, base) folded and dropped, the
     * newest ones held in typed arrays (at most 2 WINDOW), the first point kept for its marker. */
    function emptyLayer() {
        const p = {n: 0, ring: []};
        COLUMNS.forEach(key => { p[key] = new (key === "time" ? Float64Array : key === "x" || key === "y" || key === "z"
                                               || key === "measure" || key === "floor" ? Float32Array : Int32Array)(0); });
        return {p, base: 0, first: null, fold: {grid: null, counts: new Float32Array(BINS * BINS), upto: 0,
                                                sample: [], seen: 0}};
    }

    function total(layer) { return layer.base + layer.p.n; }

    function reserve(p, extra) {
        const need = p.n + extra;
        if (need <= p.x.length) { return; }
        const size = Math.max(need, 2 * p.x.length, 1024);
        COLUMNS.forEach(key => {
            const grown = new p[key].constructor(size);
            grown.set(p[key].subarray(0, p.n));
            p[key] = grown;
        });
    }

    /* A two-time map's measure beside its noise floor: "0.412 > floor 0.180: significant". */
    function measureText(measure, floor) {
        if (!Number.isFinite(floor)) { return `${measure.toFixed(3)} (no noise floor)`; }
        return measure > floor ? `${measure.toFixed(3)} > floor ${floor.toFixed(3)}: significant`
                               : `${measure.toFixed(3)} ≤ floor ${floor.toFixed(3)}: within noise`;
    }

    /* Hover text of one point: its frame (and patch), and a two-time map's measure and ring. */
    function hoverText(frame, patch, measure, floor, ring) {
        return `live frame ${frame}` + (patch >= 0 ? ` patch ${patch}` : "")
            + (Number.isFinite(measure) ? ` · non-equilibrium ${measureText(measure, floor)}` : "")
            + (ring ? ` · ring ${ring}` : "");
    }

    function decode(spec) {
        const text = atob(spec.bdata);
        const bytes = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
        return new ARRAYS[spec.dtype](bytes.buffer);
    }

    function graph() { return document.querySelector(".ms-map .js-plotly-plot"); }

    /* What the map shows: the scrubbed-back view, or the session as it grows. */
    function layer() { return live.view || live.main; }

    function clock(seconds) {
        return Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000).toISOString().slice(11, 19) : "";
    }

    function show() {
        const el = document.getElementById("live-status");
        if (!el) { return; }
        const n = total(live.main), d = live.drawn, k = d ? d.count : 0;
        let text = {off: "off", starting: "starting…", connecting: "connecting…", connected: "receiving",
                    replay: "replay",
                    reconnecting: "reconnecting…", refused: "refused: wrong token",
                    ended: "ended (another session now serves its address)"}[live.state] || live.state;
        if (live.paused) { text = `paused (${live.buffer.length} batches waiting)`; }
        const bp = live.stats.backpressure || 0;
        const latest = live.latest, backlog = live.backlog;
        const scrub = d && d.scrubbed ? ` of ${n} (up to frame ${d.frame}` + (clock(d.time) ? `, ${clock(d.time)})` : ")") : "";
        el.textContent = `${text} · ${k} points` + scrub + (live.reading ? " · reading…" : "")
            + (k > WINDOW ? ` (newest ${WINDOW} as points, older as density)` : "")
            + (live.errors ? ` · ${live.errors} bad frames skipped` : "")
            + (latest ? ` · non-equilibrium ${measureText(latest.value, latest.floor)} (frame ${latest.frame}`
                        + (latest.ring ? `, ring ${latest.ring})` : ")") : "")
            + (backlog && backlog.queued > 0
               ? ` · behind: ${backlog.queued} frames queued, ${Number(backlog.lag_s).toFixed(1)} s lag`
                 + (backlog.bound ? ` (holds at most ${backlog.bound})` : "") : "")
            + (bp ? ` · producer faster than the pipeline ×${bp}` : "");
        el.dataset.points = String(k);  // on the map, as points or folded: what the last draw showed
        el.dataset.held = String(n);
        el.dataset.until = d ? String(d.frame) : "";
        el.dataset.queued = backlog ? String(backlog.queued) : "";
        el.dataset.lag = backlog ? String(backlog.lag_s) : "";
        el.dataset.bound = backlog ? String(backlog.bound) : "";
        el.dataset.nonEquilibrium = latest ? String(latest.value) : "";
        el.dataset.noiseFloor = latest ? String(latest.floor) : "";
        el.dataset.ring = latest ? latest.ring : "";
        el.dataset.state = live.paused ? "paused" : live.state;
        el.dataset.buffered = String(live.buffer.length);
        el.dataset.standby = live.standby;
    }

    function traceIndex(gd, meta) {
        return (gd.data || []).findIndex(t => t.meta === meta);
    }

    /* Tell the page which points a lasso can reach: the Dash store LIVE_SHOWN (read by the map
     * panel's selection callback, which counts the folded frames from the session's table). */
    function publishShown() {
        const dc = window.dash_clientside;
        if (!dc || !dc.set_props) { return; }  // no Dash (bench pages)
        const value = live.cfg && live.drawn ? {session: live.cfg.session, upto: live.drawn.count} : null;
        dc.set_props(LIVE_SHOWN, {data: value});
    }

    /* plotly.js (4.1) leaks a WebGL buffer per scattergl trace at every redraw while the map is in
     * lasso or box mode: its selection layer (a subplot's _scene.select2d) draws each trace's
     * selected points with an index stream that regl never returns to its pool, even when nothing
     * is selected. Live mode redraws many times a second for hours (bench/README.md: the page's
     * heap rose ~20 bytes a frame), so the layer's draw is skipped while nothing is selected:
     * with no selected point it draws nothing. A selection draws as plotly does, and keeps its
     * buffers while it is shown (6 a redraw on the live map; bench/README.md, page_heap.py). */
    function guardSelectionLayer(gd) {
        Object.values((gd._fullLayout && gd._fullLayout._plots) || {}).forEach(plot => {
            const layer = plot._scene && plot._scene.select2d;
            if (!layer || layer._liveGuarded) { return; }
            const draw = layer.draw;
            layer.draw = function (batches) {
                return (batches || []).some(b => b && b.length) ? draw.apply(this, arguments) : this;
            };
            layer._liveGuarded = true;
        });
    }

    /* Hooks on the map's graph, once per graph div. */
    function hook(gd) {
        if (gd._liveHooked || !gd.on) { return; }
        // A server-side redraw replaces the traces: add ours back.
        gd.on("plotly_afterplot", () => { guardSelectionLayer(gd); window.morphoLive.redrawn(); });
        // Before a lasso or box is let go, so the selection callback reads the current value.
        gd.on("plotly_selecting", () => { if (!gd._liveSelecting) { gd._liveSelecting = true; publishShown(); } });
        gd.on("plotly_selected", () => { gd._liveSelecting = false; });
        gd.on("plotly_deselect", () => { gd._liveSelecting = false; });
        gd._liveHooked = true;
    }

    /* The live traces, by meta, filled with ``data`` (what draw() computed): the folded layer,
     * the newest points, the start and the end marker. */
    function newTraces(data) {
        const three = live.cfg && live.cfg.dims === 3;
        const kind = three ? "scatter3d" : "scattergl";
        const folded = three
            ? {type: kind, mode: "markers", name: "earlier live frames", meta: "live-folded",
               marker: {size: 2, color: "#6b8fb5", opacity: 0.5}, hoverinfo: "skip"}
            : {type: "heatmap", name: "earlier live frames", meta: "live-folded", colorscale: [[0, "#c6dbef"], [1, "#08306b"]],
               opacity: 0.55, showscale: false, zsmooth: false,
               hovertemplate: "%{z} earlier live frames here<extra></extra>"};
        const points = {type: kind, mode: "markers", name: "live frames", meta: "live",
                        marker: {colorscale: "Viridis", reversescale: true, size: three ? 4 : 7,
                                 line: {width: 1, color: "#222"},
                                 // Above the plot, across: the map's own colour bar (the cluster
                                 // legend) keeps the right-hand side.
                                 colorbar: {title: {text: "live: frames before the latest", side: "left"}, orientation: "h",
                                            x: 0.5, xanchor: "center", y: 1.02, yanchor: "bottom",
                                            len: 0.6, thickness: 10}},
                        hovertemplate: "%{text}<extra></extra>"};
        const start = {type: kind, mode: "markers", name: "live start", meta: "live-start",
                       marker: {symbol: three ? "diamond" : "star", size: 14, color: "#2ca02c"},
                       hovertemplate: "start: %{text}<extra></extra>"};
        const end = {type: kind, mode: "markers", name: "live latest", meta: "live-end",
                     marker: {symbol: "x", size: 14, color: END_COLOUR},
                     hovertemplate: "latest: %{text}<extra></extra>"};
        return [folded, points, start, end].map(trace => merge(trace, data[trace.meta]));
    }

    /* ``trace`` with ``data``'s fields; its marker merged, not replaced. */
    function merge(trace, data) {
        const marker = trace.marker;
        const out = Object.assign(trace, data);
        if (data.marker) { out.marker = Object.assign({}, marker, data.marker); }
        return out;
    }

    /* Fold a layer's positions up to ``upto`` into its grid (2-D; 3-D: a random sample), then
     * drop them from the arrays once they are more than WINDOW (amortised: a copy per WINDOW). */
    function foldTo(lay, upto) {
        const f = lay.fold, p = lay.p;
        for (let pos = f.upto; pos < upto; pos++) {
            const k = pos - lay.base, x = p.x[k], y = p.y[k];
            if (live.cfg && live.cfg.dims === 3) {  // reservoir sample: every folded point equally likely
                f.seen += 1;
                const slot = f.sample.length < SAMPLE_3D ? f.sample.length : Math.floor(Math.random() * f.seen);
                if (slot < SAMPLE_3D) { f.sample[slot] = [x, y, p.z[k]]; }
                continue;
            }
            if (!Number.isFinite(x) || !Number.isFinite(y)) { continue; }
            if (!f.grid) {  // around the points held, with room to spare
                const wx = extent(p.x, p.n), wy = extent(p.y, p.n);
                f.grid = {x0: wx[0] - 0.5 * wx[2], y0: wy[0] - 0.5 * wy[2], dx: 2 * wx[2] / BINS, dy: 2 * wy[2] / BINS};
            }
            let ix = Math.floor((x - f.grid.x0) / f.grid.dx), iy = Math.floor((y - f.grid.y0) / f.grid.dy);
            while (ix < 0 || iy < 0 || ix >= BINS || iy >= BINS) {
                grow(f, ix < 0, iy < 0);
                ix = Math.floor((x - f.grid.x0) / f.grid.dx); iy = Math.floor((y - f.grid.y0) / f.grid.dy);
            }
            f.counts[iy * BINS + ix] += 1;
        }
        f.upto = Math.max(f.upto, upto);
        const drop = f.upto - lay.base;
        if (drop > WINDOW) {
            COLUMNS.forEach(key => { p[key].copyWithin(0, drop, p.n); });
            p.ring = p.ring.slice(drop, p.n);
            p.n -= drop; lay.base += drop;
            if (p.x.length > 4 * WINDOW) {  // a big batch (a replay, a scrub) grew the arrays: give it back
                COLUMNS.forEach(key => { p[key] = p[key].slice(0, 2 * WINDOW); });
            }
        }
    }

    /* [lowest, highest, width (at least a small positive number)] of the first n values. */
    function extent(values, n) {
        let lo = Infinity, hi = -Infinity;
        for (let k = 0; k < n; k++) { const v = values[k]; if (v < lo) { lo = v; } if (v > hi) { hi = v; } }
        return Number.isFinite(lo) ? [lo, hi, Math.max(hi - lo, 1e-3)] : [0, 1, 1];
    }

    /* Double the grid's cells (towards negative x or y where asked), summing 2 x 2 cells into one:
     * the folded points need not be held to grow the grid. */
    function grow(f, left, down) {
        const g = f.grid, old = f.counts, counts = new Float32Array(BINS * BINS);
        const ox = left ? BINS : 0, oy = down ? BINS : 0;
        for (let iy = 0; iy < BINS; iy++) {
            for (let ix = 0; ix < BINS; ix++) {
                const c = old[iy * BINS + ix];
                if (c) { counts[((iy + oy) >> 1) * BINS + ((ix + ox) >> 1)] += c; }
            }
        }
        f.counts = counts;
        f.grid = {x0: left ? g.x0 - BINS * g.dx : g.x0, y0: down ? g.y0 - BINS * g.dy : g.y0, dx: 2 * g.dx, dy: 2 * g.dy};
    }

    function foldedTrace(lay) {
        const f = lay.fold;
        if (live.cfg && live.cfg.dims === 3) {
            return {x: f.sample.map(s => s[0]), y: f.sample.map(s => s[1]), z: f.sample.map(s => s[2])};
        }
        const g = f.grid;
        if (!f.upto || !g) { return {z: [[null]], x0: 0, dx: 1, y0: 0, dy: 1, visible: false}; }
        const z = [];
        for (let iy = 0; iy < BINS; iy++) {
            const row = new Array(BINS);
            for (let ix = 0; ix < BINS; ix++) { const c = f.counts[iy * BINS + ix]; row[ix] = c ? c : null; }
            z.push(row);
        }
        return {z, x0: g.x0 + g.dx / 2, dx: g.dx, y0: g.y0 + g.dy / 2, dy: g.dy, visible: true};
    }

    /* A layer's held points [a, b) (array positions) with what a hover, click or lasso needs
     * (plain arrays: dcc.Graph drops typed-array customdata from events). */
    function pointsTrace(p, a, b) {
        const session = live.cfg ? live.cfg.session : "";
        const custom = [], ids = [], text = [];
        for (let k = a; k < b; k++) {
            custom.push([p.row[k], p.index[k]]);
            ids.push(`live:${session}:${p.row[k]}`);
            text.push(hoverText(p.index[k], p.patch[k], p.measure[k], p.floor[k], p.ring[k] || ""));
        }
        const out = {x: p.x.slice(a, b), y: p.y.slice(a, b), customdata: custom, ids, text};
        if (live.cfg && live.cfg.dims === 3) { out.z = p.z.slice(a, b); }
        return out;
    }

    /* The colours of the drawn points [a, b): frames before the newest (0: the newest). The colour
     * bar's range is rounded up to 1, 2 or 5 x 10^k, so its tick labels stay put from one draw to
     * the next: plotly measures every label it has not seen at that place (getBoundingClientRect,
     * a layout) and caches the box, up to 10,000 of them; a range that grew with each frame
     * moved every label at every draw, and the page's heap rose ~20 bytes a frame for an hour. */
    function age(p, a, b) {
        const newest = p.index[b - 1], color = new Int32Array(b - a);
        for (let k = a; k < b; k++) { color[k - a] = newest - p.index[k]; }
        const span = Math.max(1, newest - p.index[a]), decade = Math.pow(10, Math.floor(Math.log10(span)));
        const cmax = [1, 2, 5, 10].map(m => m * decade).find(v => v >= span);
        return {color, cmin: 0, cmax};
    }

    /* One redraw per animation frame, whatever arrived since the last: the newest WINDOW points,
     * the folded rest, the start and end markers. Only the live traces' data change. */
    function draw() {
        live.drawRequested = false;
        const gd = graph(), lay = layer(), p = lay.p;
        if (!gd || !gd.data || !window.Plotly || !p.n) { return; }
        hook(gd);
        const b = p.n, a = Math.max(0, b - WINDOW);
        const data = {
            "live-folded": foldedTrace(lay),
            live: Object.assign(pointsTrace(p, a, b), {marker: age(p, a, b)}),
            "live-start": lay.first,
            "live-end": pointsTrace(p, b - 1, b),
        };
        if (traceIndex(gd, "live") < 0) {  // new, or dropped by a server-side redraw of the map
            window.Plotly.addTraces(gd, newTraces(data));
        } else {
            Object.keys(data).forEach(meta => { const i = traceIndex(gd, meta); gd.data[i] = merge(gd.data[i], data[meta]); });
            window.Plotly.redraw(gd);
        }
        guardSelectionLayer(gd);
        live.drawn = {count: total(lay), frame: p.index[b - 1], time: p.time[b - 1], scrubbed: lay === live.view};
        show();
    }

    function requestDraw() {
        if (live.drawRequested) { return; }
        live.drawRequested = true;
        requestAnimationFrame(draw);
    }

    /* Note the rows (each point's own, unique in its session) this page has been given, as sorted
     * [first, end) runs; 0 in the returned mask for a row held already (counted in repeats).
     * A session process that died before storing what it had sent has a successor that sends
     * those frames again, with the same rows: the page holds each point once. What a soak checks
     * to know that gap filling missed nothing and doubled nothing (bench/soak.py --page).
     * Batches come in order, so a session is one run, and noting a row is a comparison. */
    function noteRows(rows) {
        const runs = live.rows, fresh = new Uint8Array(rows.length).fill(1);
        for (let k = 0; k < rows.length; k++) {
            const r = rows[k];
            if (r < 0) { continue; }  // a point with no stored image
            const last = runs[runs.length - 1];
            if (last && last[1] === r) { last[1] += 1; continue; }
            let lo = 0, hi = runs.length;  // the first run that ends at r or later
            while (lo < hi) { const mid = (lo + hi) >> 1; if (runs[mid][1] < r) { lo = mid + 1; } else { hi = mid; } }
            const run = runs[lo], next = runs[lo + 1];
            if (run && run[0] <= r && r < run[1]) {
                live.repeats += 1; fresh[k] = 0;
            } else if (run && run[1] === r) {
                run[1] += 1;
                if (next && next[0] === run[1]) { run[1] = next[1]; runs.splice(lo + 1, 1); }
            } else if (run && run[0] === r + 1) {
                run[0] = r;
            } else {
                runs.splice(lo, 0, [r, r + 1]);
            }
        }
        return fresh;
    }

    /* Only the positions k where keep[k] of a batch's columns (coords: dims values a point). */
    function kept(keep, dims, columns) {
        const at = [];
        keep.forEach((k, i) => { if (k) { at.push(i); } });
        const out = {};
        Object.keys(columns).forEach(key => {
            const values = columns[key], width = key === "coords" ? dims : 1;
            const picked = Array.isArray(values) ? [] : new values.constructor(at.length * width);
            at.forEach((i, j) => { for (let d = 0; d < width; d++) { picked[j * width + d] = values[i * width + d]; } });
            out[key] = picked;
        });
        return out;
    }

    /* Append a batch's points to a layer and fold all but the newest WINDOW (``note``: the page's
     * own session, whose rows are noted and held once). */
    function add(lay, message, note = false) {
        let coords = decode(message.coords), index = decode(message.index), row = decode(message.row);
        let patch = decode(message.patch), measure = decode(message.non_equilibrium);
        const dims = message.coords.shape[1] || 2;
        let floor = message.noise_floor ? decode(message.noise_floor) : new Float32Array(index.length).fill(NaN);
        let time = message.received ? decode(message.received) : new Float64Array(index.length).fill(NaN);
        let ring = message.ring || [];
        const fresh = note ? noteRows(row) : null;
        if (fresh && fresh.includes(0)) {  // points this page holds already: once is enough
            ({coords, index, row, patch, measure, floor, time, ring} =
                kept(fresh, dims, {coords, index, row, patch, measure, floor, time, ring}));
        }
        const n = index.length, p = lay.p;
        reserve(p, n);
        for (let k = 0; k < n; k++) {
            const at = p.n + k;
            p.x[at] = coords[k * dims]; p.y[at] = coords[k * dims + 1];
            p.z[at] = dims === 3 ? coords[k * dims + 2] : 0;
            p.ring[at] = ring[k] || "";
        }
        p.index.set(index, p.n); p.row.set(row, p.n); p.patch.set(patch, p.n);
        p.measure.set(measure, p.n); p.floor.set(floor, p.n); p.time.set(time, p.n);
        if (!lay.first && n) { p.n += 1; lay.first = pointsTrace(p, p.n - 1, p.n); p.n -= 1; }
        p.n += n;
        foldTo(lay, total(lay) - WINDOW);
        return {n, index, measure, floor, ring};
    }

    function apply(message) {
        const {n, index, measure, floor, ring} = add(live.main, message, true);
        for (let k = 0; k < n; k++) {
            if (Number.isFinite(measure[k])) {
                live.latest = {value: measure[k], floor: floor[k], ring: ring[k] || "", frame: index[k]};
            }
        }
        live.errors += (message.errors || []).length;
        live.stats = message.stats || live.stats;
        if (message.backlog) { live.backlog = message.backlog; }
        if (n && !live.view) { requestDraw(); }
        show();
    }

    /* Every batch goes through here once, in order: shown now, or held while paused. */
    function deliver(message) {
        live.received = Math.max(live.received, message.seq);
        if (live.paused) { live.buffer.push(message); show(); } else { apply(message); }
    }

    /* Batches a..b (b null: to the end) from the session's Tiled table, via the app's route.
     * Batches the pipeline has sent but not yet stored are asked for again, a few times. */
    const NO_RETRY = 20;  // tries: asked for batches that need not all hold rows (a scrub)
    function fetchBatches(session, from, to, tries = 0) {
        const query = `from_batch=${from}` + (to === null ? "" : `&to_batch=${to}`);
        return fetch(`live/${encodeURIComponent(session)}/points?${query}`,
                     {headers: {"X-Live-Token": live.cfg.token}})
            .then(r => r.ok ? r.json() : r.text().then(t => { throw new Error(t); }))
            .then(message => {
                if (to !== null && message.missing > 0 && tries < NO_RETRY) {
                    return new Promise(done => setTimeout(done, 250))
                        .then(() => fetchBatches(session, from, to, tries + 1));
                }
                return message;
            });
    }

    /* Batches a..b into the page. Live, a failed read (Tiled or the app restarting) is tried
     * again, 0.5 s doubling to 10 s, FILL_TRIES times (~45 s): at the end of a stream no later
     * batch would reveal the gap. */
    const FILL_TRIES = 8;
    function fill(from, to, failures = 0) {
        const cfg = live.cfg;
        return fetchBatches(cfg.session, from, to).then(message => {
            // A batch whose frames all failed holds errors only: delivered too, so they are counted.
            if (message.n || message.errors.length) { deliver(message); }
        }, err => {
            if (cfg.mode !== "live" || live.cfg !== cfg || failures + 1 >= FILL_TRIES) { throw err; }
            const delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, failures));
            return new Promise(done => setTimeout(done, delay))
                .then(() => (live.cfg === cfg ? fill(from, to, failures + 1) : null));
        });
    }

    function receive(message) {
        if (message.type === "hello") {  // (re)connected: batches sent while away come from the table
            live.stats = message.stats || live.stats;
            if (message.backlog) { live.backlog = message.backlog; }
            live.pending = live.pending.then(() => {  // after what the last socket brought
                // Another session process (restarted): batches this page has from its first number
                // on came from one that died before storing them. This one numbers their frames
                // again, maybe in other batches: read them anew (the same rows: add() holds
                // each point once).
                const started = message.started_seq || 0;
                if (live.startedSeq !== null && started !== live.startedSeq) {
                    live.received = Math.min(live.received, started - 1);
                }
                live.startedSeq = started;
                // Up to next_seq - 1, not stored_seq: a batch published just before this socket
                // joined may not be stored yet; fetchBatches asks again until the table has it.
                const from = live.received + 1, to = message.next_seq - 1;
                return to >= from ? fill(from, to) : null;
            }).catch(err => { console.error("live: could not fill a gap", err); });
            show();
            return;
        }
        if (message.type !== "batch") { return; }  // "gap" is handled by the sequence numbers below
        live.pending = live.pending.then(() => {
            if (message.seq <= live.received) { return null; }  // already filled from the table
            const gap = message.seq > live.received + 1 ? fill(live.received + 1, message.seq - 1) : Promise.resolve();
            return gap.then(() => deliver(message));
        }).catch(err => { console.error("live: could not fill a gap", err); });
    }

    function connect() {
        const cfg = live.cfg;
        if (!cfg || !cfg.ws_url) { return; }
        live.state = live.retries ? "reconnecting" : "connecting"; show();
        const ws = new WebSocket(cfg.ws_url);
        live.ws = ws;
        ws.onopen = () => { ws.send(JSON.stringify({type: "auth", token: cfg.token})); };
        ws.onmessage = event => {
            const message = JSON.parse(event.data);
            if (message.type === "hello" && message.session !== cfg.session) {
                // The app keeps one websocket port for its sessions (a restarted session process
                // comes back on it): a later session answers there once this one is over.
                live.ws = null; ws.close(); live.state = "ended"; show();
                return;
            }
            if (message.type === "hello") { live.retries = 0; live.state = "connected"; }
            receive(message);
        };
        ws.onclose = event => {
            if (live.ws !== ws || live.cfg !== cfg) { return; }  // switched off or reconfigured
            if (event.code === 1008) { live.state = "refused"; show(); return; }
            const delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, live.retries++));
            live.state = "reconnecting"; show();
            live.timer = setTimeout(connect, delay);
        };
    }

    function reset() {
        if (live.timer) { clearTimeout(live.timer); }
        const ws = live.ws;
        live.ws = null;
        if (ws) { ws.close(); }
        live.main = emptyLayer(); live.view = null; live.scrubs += 1; live.reading = false;
        live.backlog = null; live.drawn = null;
        live.received = -1; live.startedSeq = null; live.retries = 0; live.buffer = []; live.errors = 0; live.stats = {};
        live.latest = null; live.rows = []; live.repeats = 0;
        live.paused = false; live.pending = Promise.resolve();
        const gd = graph();
        if (gd && gd.data && window.Plotly) {
            const mine = gd.data.map((t, i) => String(t.meta || "").startsWith("live") ? i : -1).filter(i => i >= 0);
            if (mine.length) { window.Plotly.deleteTraces(gd, mine); }
        }
    }

    // "starting…" the moment the switch goes on. A Dash callback on the switch would only run
    // after the server's start callback (which also outputs the switch's value) has returned.
    document.addEventListener("change", event => {
        const input = event.target;
        if (input.checked && input.closest && input.closest(".ms-live-switch")) { window.morphoLive.starting(); }
    });

    window.morphoLive = {
        /* config: null (off), {mode: "live", ws_url, token, session, dims} or {mode: "replay", ...}. */
        configure(config) {
            reset();
            live.cfg = config || null;
            live.state = !config ? "off" : config.mode === "replay" ? "replay" : "connecting";
            if (config && config.mode === "replay") {
                live.pending = fill(0, null).catch(err => { live.state = `replay failed: ${err.message}`; show(); });
            } else if (config) {
                connect();
            }
            show();
        },
        /* The switch went on: say so until the session's config arrives. */
        starting() { reset(); live.cfg = null; live.state = "starting"; show(); },
        /* "ready" when the shown map's session process is warm ("warming", "failed", "no map", "in use"). */
        standby(state) { live.standby = state; show(); },
        paused() { return live.paused; },
        pause(paused) {
            live.paused = paused;
            if (!paused) { const waiting = live.buffer; live.buffer = []; waiting.forEach(apply); }
            show();
        },
        /* A server-side redraw of the map (new colouring, selection) replaces its traces: re-add ours. */
        redrawn() {
            const gd = graph();
            if (live.cfg && layer().p.n && gd && traceIndex(gd, "live") < 0) { requestDraw(); }
        },
        /* Show the session as it was at a fraction (0..1) of the batches received, read again
         * from its Tiled table (the page keeps no old points); 1 follows the newest again. */
        scrub(fraction) {
            const token = ++live.scrubs;
            if (fraction >= 1 || live.received < 0 || !live.cfg) {
                live.view = null; live.reading = false; requestDraw(); show();
                return Promise.resolve();
            }
            const to = Math.round(Math.max(0, fraction) * live.received);
            live.reading = true; show();
            return fetchBatches(live.cfg.session, 0, to, NO_RETRY).then(message => {
                if (token !== live.scrubs) { return; }  // a later scrub (or a reset) won
                const view = emptyLayer();
                if (message.n) { add(view, message); }
                live.view = view; live.reading = false;
                requestDraw(); show();
            }).catch(err => {
                if (token === live.scrubs) { live.reading = false; live.state = `scrub failed: ${err.message}`; show(); }
            });
        },
        /* What the page holds and draws (tests and bench/live.py read it). */
        summary() {
            const gd = graph(), lay = layer(), f = lay.fold;
            const t = gd ? (gd.data || []).find(t => t.meta === "live") : null;
            return {held: total(live.main), shown: live.drawn ? live.drawn.count : 0, drawn: t ? t.x.length : 0,
                    folded: live.cfg && live.cfg.dims === 3 ? f.seen : f.counts.reduce((sum, c) => sum + c, 0),
                    kept: lay.p.n, capacity: lay.p.x.length,
                    colours: t && t.marker.color ? t.marker.color.length : 0,
                    rows: live.rows.map(run => run.slice()), repeats: live.repeats};
        },
    };
})();
