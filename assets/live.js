/* Live mode in the browser: points arrive over a websocket and are added to the map here.
 *
 * No server round trip per message and no re-sending of the figure: each batch is decoded
 * (base64 typed arrays, see streaming/messages.py) and appended with Plotly.extendTraces to a
 * "live" trace of the map's graph. Batches carry a sequence number; when some were missed
 * (a dropped connection, a slow tab) the missing ones are read from the app's
 * /live/<session>/points route, which serves the session's Tiled table. Pause keeps the
 * socket open and buffers; resume applies the buffer. A closed socket reconnects with
 * exponential back-off (0.5 s doubling to 10 s).
 *
 * The page connects only once the server says the session listens (the config arrives then;
 * until then the status reads "starting…"), and authenticates with its first message,
 * {type: "auth", token}: never in the URL, which a browser prints when a socket fails.
 *
 * Each live point carries, as plain JS arrays (dcc.Graph drops typed-array customdata from
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

    const live = {
        cfg: null, ws: null, paused: false, buffer: [], pending: Promise.resolve(),
        points: emptyPoints(),
        received: -1, retries: 0, timer: null, state: "off", errors: 0, stats: {}, latest: null,
        standby: "",
    };

    function emptyPoints() {
        return {x: [], y: [], z: [], index: [], custom: [], ids: [], text: []};
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

    function show() {
        const el = document.getElementById("live-status");
        if (!el) { return; }
        const n = live.points.index.length;
        let text = {off: "off", starting: "starting…", connecting: "connecting…", connected: "receiving",
                    replay: "replay",
                    reconnecting: "reconnecting…", refused: "refused: wrong token"}[live.state] || live.state;
        if (live.paused) { text = `paused (${live.buffer.length} batches waiting)`; }
        const bp = live.stats.backpressure || 0;
        const latest = live.latest;
        el.textContent = `${text} · ${n} points` + (live.errors ? ` · ${live.errors} bad frames skipped` : "")
            + (latest ? ` · non-equilibrium ${measureText(latest.value, latest.floor)} (frame ${latest.frame}`
                        + (latest.ring ? `, ring ${latest.ring})` : ")") : "")
            + (bp ? ` · producer faster than the pipeline ×${bp}` : "");
        el.dataset.points = String(n);
        el.dataset.nonEquilibrium = latest ? String(latest.value) : "";
        el.dataset.noiseFloor = latest ? String(latest.floor) : "";
        el.dataset.ring = latest ? latest.ring : "";
        el.dataset.state = live.paused ? "paused" : live.state;
        el.dataset.buffered = String(live.buffer.length);
        el.dataset.standby = live.standby;
    }

    function liveTraceIndex(gd) {
        return (gd.data || []).findIndex(t => t.meta === "live");
    }

    /* The live trace, its start and its end marker: (re)created from all points held here. */
    function ensureTraces() {
        const gd = graph();
        if (!gd || !gd.data || !window.Plotly) { return -1; }
        if (!gd._liveHooked && gd.on) {  // a server-side redraw replaces the traces: add ours back
            gd.on("plotly_afterplot", () => window.morphoLive.redrawn());
            gd._liveHooked = true;
        }
        let i = liveTraceIndex(gd);
        if (i >= 0) { return i; }
        const p = live.points, three = live.cfg && live.cfg.dims === 3;
        const kind = three ? "scatter3d" : "scattergl";
        // Copies: Plotly keeps the arrays it is given, and extendTraces appends to them itself.
        const xyz = (a, b) => three ? {x: a.x.slice(...b), y: a.y.slice(...b), z: a.z.slice(...b)}
                                    : {x: a.x.slice(...b), y: a.y.slice(...b)};
        // Markers name their point the same way: a lasso over them counts that point once.
        const tags = (b, template) => ({customdata: p.custom.slice(...b), ids: p.ids.slice(...b),
                                        text: p.text.slice(...b), hovertemplate: template});
        window.Plotly.addTraces(gd, [
            Object.assign({type: kind, mode: "markers", name: "live frames", meta: "live",
                           marker: {color: p.index.slice(), colorscale: "Viridis", size: three ? 4 : 7,
                                    line: {width: 1, color: "#222"},
                                    // Above the plot, across: the map's own colour bar (the cluster
                                    // legend) keeps the right-hand side.
                                    colorbar: {title: {text: "live frame", side: "left"}, orientation: "h",
                                               x: 0.5, xanchor: "center", y: 1.02, yanchor: "bottom",
                                               len: 0.6, thickness: 10}}},
                          xyz(p, []), tags([], "%{text}<extra></extra>")),
            Object.assign({type: kind, mode: "markers", name: "live start", meta: "live-start",
                           marker: {symbol: three ? "diamond" : "star", size: 14, color: "#2ca02c"}},
                          xyz(p, [0, 1]), tags([0, 1], "start: %{text}<extra></extra>")),
            // The end marker's arrays are extended with the live trace's and keep their last entry.
            Object.assign({type: kind, mode: "markers", name: "live latest", meta: "live-end",
                           marker: {symbol: "x", size: 14, color: [END_COLOUR]}},
                          xyz(p, [-1]), tags([-1], "latest: %{text}<extra></extra>")),
        ]);
        return liveTraceIndex(gd);
    }

    function apply(message) {
        const coords = decode(message.coords), index = decode(message.index), row = decode(message.row);
        const patch = decode(message.patch), measure = decode(message.non_equilibrium);
        const floor = message.noise_floor ? decode(message.noise_floor) : new Float32Array(index.length).fill(NaN);
        const ring = message.ring || [];
        const n = index.length, dims = message.coords.shape[1], session = live.cfg.session;
        const x = [], y = [], z = [], idx = Array.from(index), custom = [], ids = [], text = [];
        for (let k = 0; k < n; k++) {
            x.push(coords[k * dims]); y.push(coords[k * dims + 1]);
            if (dims === 3) { z.push(coords[k * dims + 2]); }
            custom.push([row[k], index[k]]);
            ids.push(`live:${session}:${row[k]}`);
            text.push(hoverText(index[k], patch[k], measure[k], floor[k], ring[k] || ""));
            if (Number.isFinite(measure[k])) {
                live.latest = {value: measure[k], floor: floor[k], ring: ring[k] || "", frame: index[k]};
            }
        }
        const p = live.points;
        p.x.push(...x); p.y.push(...y); p.z.push(...z); p.index.push(...idx);
        p.custom.push(...custom); p.ids.push(...ids); p.text.push(...text);
        live.errors += (message.errors || []).length;
        live.stats = message.stats || live.stats;
        const gd = graph();
        const had = gd ? liveTraceIndex(gd) : -1;
        const i = ensureTraces();
        if (i >= 0 && had >= 0 && n) {  // the trace existed: extend it (a new one already has every point)
            // One extendTraces, one redraw: the points, and the end marker moved to the newest.
            const update = {x: [x, x.slice(-1)], y: [y, y.slice(-1)], customdata: [custom, custom.slice(-1)],
                            ids: [ids, ids.slice(-1)], text: [text, text.slice(-1)],
                            "marker.color": [idx, [END_COLOUR]]};
            if (dims === 3) { update.z = [z, z.slice(-1)]; }
            const keep = {};
            Object.keys(update).forEach(key => { keep[key] = [null, 1]; });  // null: no limit
            window.Plotly.extendTraces(gd, update, [i, i + 2], keep);
        }
        show();
    }

    /* Every batch goes through here once, in order: shown now, or held while paused. */
    function deliver(message) {
        live.received = Math.max(live.received, message.seq);
        if (live.paused) { live.buffer.push(message); show(); } else { apply(message); }
    }

    /* Batches a..b (b null: to the end) from the session's Tiled table, via the app's route.
     * Batches the pipeline has sent but not yet stored are asked for again, a few times. */
    function fetchBatches(session, from, to, tries = 0) {
        const query = `from_batch=${from}` + (to === null ? "" : `&to_batch=${to}`);
        return fetch(`live/${encodeURIComponent(session)}/points?${query}`,
                     {headers: {"X-Live-Token": live.cfg.token}})
            .then(r => r.ok ? r.json() : r.text().then(t => { throw new Error(t); }))
            .then(message => {
                if (to !== null && message.missing > 0 && tries < 20) {
                    return new Promise(done => setTimeout(done, 250))
                        .then(() => fetchBatches(session, from, to, tries + 1));
                }
                return message;
            });
    }

    function fill(from, to) {
        return fetchBatches(live.cfg.session, from, to).then(message => { if (message.n) { deliver(message); } });
    }

    function receive(message) {
        if (message.type === "hello") {  // (re)connected: batches sent while away come from the table
            live.stats = message.stats || live.stats;
            // Up to next_seq - 1, not stored_seq: a batch published just before this socket joined
            // may not be stored yet; fetchBatches asks again until the table has it.
            const from = live.received + 1, to = message.next_seq - 1;
            if (to >= from) { live.pending = live.pending.then(() => fill(from, to)); }
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
        live.points = emptyPoints();
        live.received = -1; live.retries = 0; live.buffer = []; live.errors = 0; live.stats = {};
        live.latest = null;
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
        redrawn() { if (live.cfg && live.points.index.length && graph()) { ensureTraces(); } },
    };
})();
