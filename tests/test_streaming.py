"""Live mode: simulator -> ZMQ/folder/Tiled -> operator -> websocket clients and the Tiled table."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import zmq
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.live import points_message
from core.live.session import LiveSession
from core.data.preprocess import preprocess_frame
from core.settings import Settings
from core.data.store import Store
from streaming.listeners import FolderListener, TiledFrameListener
from streaming.messages import (
    FrameError,
    ResultBatch,
    StreamEnd,
    decode_message,
    end_parts,
    frame_from_parts,
    frame_to_parts,
    from_typed_array,
)
from streaming.operator import LIVE_SURROGATES, STAGES, LiveModel
from streaming.pipeline import LiveConfig, LivePipeline, run_on_command, run_pipeline
from streaming.publishers import POLICY_VIOLATION, WebSocketPublisher
from core.xpcs.noise import noise_floor
from core.xpcs.rings import RingGeometry
from streaming.simulator import TWO_TIME_METADATA, replay_folder, replay_zmq, two_time_series
from tests.test_xpcs import speckle_counts
from tests.conftest import DEMO_DATA
from core.data.results.datasets import read_images

TOKEN = "test-token-0123456789"
TIMEOUT = 30  # seconds any single wait may take before the test fails instead of hanging


@pytest.fixture(scope="module")
def live_map(tiled_server):
    """A tiny real map in its own project: dataset, VAE, latents, PCA, HDBSCAN, as flows store them."""
    from core.data.results.clusterings import write_clustering
    from core.data.results.latents import write_latents
    from core.data.results.projections import write_projection
    from core.models.checkpoint import save_model
    from core.maps.clustering import cluster_hdbscan
    from core.maps.encode import encode_images
    from core.data.ingest import ingest_array
    from core.models.vae import VAEConfig
    from core.data.preprocess import PreprocessParams
    from core.maps.projection import Projector
    from core.models.train import TrainParams, train_vae

    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                           project=f"t{uuid.uuid4().hex[:8]}")
    # The demo's real frames, every 4th pixel: (50, 125, 125) uint8, quick to preprocess.
    frames = np.ascontiguousarray(np.load(DEMO_DATA / "colloids_brightfield.npz")["frames"][:, ::4, ::4])
    dataset_id = ingest_array(frames, store, PreprocessParams(size=32), name="live test",
                              source_label="demo").dataset_id
    images = read_images(store, dataset_id)  # (50, 32, 32)
    model, _ = train_vae(images, VAEConfig(image_size=32, latent_dim=4, base_channels=4),
                         TrainParams(epochs=1, batch_size=25, val_fraction=0, device="cpu"))
    model_id = save_model(store, model, metadata={"dataset_id": dataset_id})
    mu, logvar = encode_images(model, images)
    ids = {"dataset_id": dataset_id, "model_id": model_id}
    ids["latents_id"] = write_latents(store, mu, logvar, ids)
    projector = Projector("pca")
    embedding = projector.fit_transform(mu)
    projection_id = write_projection(store, embedding, projector, ids)
    result = cluster_hdbscan(embedding, min_cluster_size=5)
    clustering_id = write_clustering(
        store, result.labels, result.probabilities,
        {**ids, "projection_id": projection_id,
                  "params": {"space": "projection", "min_cluster_size": 5, "min_samples": None}})
    live = LiveModel.from_store(store, projection_id, clustering_id, device="cpu")
    return SimpleNamespace(store=store, live=live, frames=frames, projection_id=projection_id,
                           clustering_id=clustering_id, api_key=tiled_server.api_key)


def _config(live_map, **changes) -> LiveConfig:
    return LiveConfig(projection_id=live_map.projection_id, clustering_id=live_map.clustering_id,
                      source="tcp://127.0.0.1:*", ws_port=0, device="cpu", **changes)


async def _pipeline(live_map, **changes) -> LivePipeline:
    pipeline = await LivePipeline.create(_config(live_map, **changes), store=live_map.store,
                                         token=TOKEN, roots=[], live=live_map.live)
    await pipeline.start()
    return pipeline


class Client:
    """A websocket client that records every message and lets a test await conditions on them."""

    def __init__(self, url: str, token: str = TOKEN, sock: socket.socket | None = None, **kwargs):
        self.uri, self.token, self.sock, self.kwargs = url, token, sock, kwargs
        self.messages: list[dict] = []
        self.changed = asyncio.Condition()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Client:
        self.ws = await connect(self.uri, sock=self.sock, **self.kwargs)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        self.task = asyncio.create_task(self._read())
        await self.until(lambda: self.of("hello"))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                async with self.changed:
                    self.messages.append(decode_message(text))
                    self.changed.notify_all()
        finally:
            async with self.changed:
                self.messages.append({"type": "closed"})
                self.changed.notify_all()

    async def until(self, predicate, timeout: float = TIMEOUT):
        async with self.changed:
            return await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    def indices(self) -> list[int]:
        return [int(i) for m in self.of("batch") for i in m["index"]]


def _crops(live_map, n: int) -> np.ndarray:
    """Smaller real frames (crops of the demo series) so a test streams quickly."""
    return np.ascontiguousarray(live_map.frames[:n, :96, :96])


def test_end_to_end_every_frame_accounted_for(live_map):
    """Simulator -> ZMQ -> operator -> websocket and Tiled: indices sent == received == stored."""
    frames = live_map.frames[:40]

    async def scenario():
        ready, info = asyncio.Event(), {}
        settings = Settings(data_roots=[])

        def on_ready(found: dict) -> None:
            info.update(found)
            ready.set()

        run = asyncio.create_task(run_pipeline(
            settings, _config(live_map, stop_at_end=True, max_batch=8), token=TOKEN,
            on_ready=on_ready, store=live_map.store, live=live_map.live))
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        async with Client(info["ws_url"]) as client:
            sent = await asyncio.to_thread(replay_zmq, frames, info["source"], rate=200)
            stats = await asyncio.wait_for(run, TIMEOUT)
            await client.until(lambda: client.of("closed"))
        return info, client, sent, stats

    info, client, sent, stats = asyncio.run(scenario())
    print(stats)
    assert sent == len(frames)
    assert client.indices() == list(range(len(frames)))
    assert client.of("end")[0]["sent"] == len(frames)
    batches = client.of("batch")
    assert [m["seq"] for m in batches] == list(range(len(batches)))
    first = batches[0]
    assert first["coords"].shape == (first["n"], 2) and set(first["timings_ms"]) <= set(STAGES)
    assert {"preprocess", "encode", "project", "cluster"} <= set(first["timings_ms"])
    session = LiveSession.open(live_map.store, info["session"])
    table = session.points()
    assert sorted(table["index"]) == list(range(len(frames))) and session.errors().empty
    coords = np.concatenate([m["coords"] for m in batches])
    assert np.allclose(table.sort_values("index")[["x", "y"]].to_numpy(), coords)
    assert set(table["cluster"]) <= set(range(-1, 10))
    rows = np.concatenate([m["row"] for m in batches])
    assert rows.tolist() == list(range(len(frames))) and np.isnan(table["non_equilibrium"]).all()
    stored = np.asarray(session.images[0:len(frames)])  # (40, 32, 32), by row
    for index, row in table[["index", "row"]].to_numpy()[::13]:
        assert np.array_equal(stored[row], preprocess_frame(frames[index], live_map.live.preprocess)[0])
    assert stats["processed"] == stats["stored_rows"] == len(frames) and stats["errors"] == 0
    assert live_map.live.clusters.method == "approximate_predict"


def test_client_reconnects_and_fills_the_gap_from_the_table(live_map):
    """A client that drops out gets the rest after reconnecting; the table fills what it missed."""
    frames = _crops(live_map, 30)

    async def scenario():
        pipeline = await _pipeline(live_map)
        url, endpoint = pipeline.websocket.url, pipeline.info["source"]
        async with Client(url) as watcher:  # stays connected: tells when frames were processed
            async with Client(url) as client:
                await asyncio.to_thread(replay_zmq, frames[:10], endpoint, end=False)
                await client.until(lambda: len(client.indices()) == 10)
            last_seen = client.of("batch")[-1]["seq"]
            await asyncio.to_thread(replay_zmq, frames[10:20], endpoint, start_index=10, end=False)
            await watcher.until(lambda: len(watcher.indices()) == 20)
            async with Client(url) as again:
                await asyncio.to_thread(replay_zmq, frames[20:], endpoint, start_index=20)
                await again.until(lambda: again.of("end"))
        await pipeline.stop()
        return pipeline, client, again, last_seen

    pipeline, client, again, last_seen = asyncio.run(scenario())
    hello = again.of("hello")[0]
    assert hello["next_seq"] > last_seen + 1 and hello["table"] == pipeline.session.path
    table = pipeline.session.points()
    gap = table[(table["batch"] > last_seen) & (table["batch"] < hello["next_seq"])]
    assert sorted(gap["index"]) == list(range(10, 20))
    assert again.indices() == list(range(20, 30))
    assert sorted(client.indices() + list(gap["index"]) + again.indices()) == list(range(30))


def test_wrong_or_missing_token_is_refused_with_policy_violation():
    """Only a client whose first message carries the token is served; a token in the URL, a wrong
    one, nonsense or silence get close code 1008."""

    async def scenario():
        server = WebSocketPublisher(TOKEN, session="s", auth_timeout=0.5)
        await server.start()
        codes = []
        for query, first in ((f"?token={TOKEN}", None), ("", None),
                             ("", {"type": "auth", "token": "wrong"}), ("", {"type": "auth"}),
                             ("", {"token": TOKEN}), ("", [TOKEN]), ("", "not json")):
            async with connect(server.url + query) as ws:
                if first is not None:
                    await ws.send(first if isinstance(first, str) else json.dumps(first))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                codes.append(closed.value.rcvd.code)
        async with connect(server.url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": TOKEN}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        await server.stop()
        return codes, hello

    codes, hello = asyncio.run(scenario())
    assert codes == [POLICY_VIOLATION] * 7
    assert hello["type"] == "hello" and hello["session"] == "s"


def test_websocket_ports_are_their_own_and_a_taken_one_is_one_clear_error():
    """Two sessions on one machine get different free ports by default; a named port in use fails
    with a message that says which and what to do."""

    async def scenario():
        first, second = WebSocketPublisher(TOKEN, session="a"), WebSocketPublisher(TOKEN, session="b")
        await first.start()
        await second.start()
        taken = WebSocketPublisher(TOKEN, session="c", port=first.port)
        with pytest.raises(OSError) as refused:
            await taken.start()
        ports = first.port, second.port
        await first.stop()
        await second.stop()
        return ports, str(refused.value)

    (a, b), message = asyncio.run(scenario())
    assert LiveConfig(projection_id="p", source="tcp://127.0.0.1:1").ws_port == 0
    assert a != b and 0 not in (a, b)
    assert f"127.0.0.1:{a}" in message and "choose another port" in message


def test_standby_session_starts_on_command_and_stops_on_end_of_input(live_map, tiled_server):
    """run_on_command: the map loaded and warm before any command; a session only after "start";
    end of input stops it and everything taken is stored; "stop" first ends without a session."""
    frames = _crops(live_map, 6)
    settings = Settings(data_roots=[], tiled_uri=tiled_server.uri.split("?")[0],
                        tiled_api_key=live_map.api_key, project=live_map.store.project)

    async def scenario():
        events, commands = [], asyncio.StreamReader()
        changed = asyncio.Event()

        def emit(event: dict) -> None:
            events.append(event)
            changed.set()

        async def until(kind: str) -> dict:
            while not [e for e in events if e["event"] == kind]:
                changed.clear()
                await asyncio.wait_for(changed.wait(), TIMEOUT)
            return next(e for e in events if e["event"] == kind)

        run = asyncio.create_task(run_on_command(
            settings, _config(live_map), token=TOKEN, commands=commands, emit=emit,
            stop_event=asyncio.Event()))
        await until("warm")
        assert [e["event"] for e in events] == ["warm"]  # nothing listens before "start"
        commands.feed_data(b"start\n")
        ready = await until("ready")
        async with Client(ready["ws_url"]) as client:
            await asyncio.to_thread(replay_zmq, frames, ready["source"], end=False)
            await client.until(lambda: len(client.indices()) == len(frames))
            commands.feed_eof()
            stats = await asyncio.wait_for(run, TIMEOUT)

        idle = asyncio.StreamReader()
        idle.feed_data(b"stop\n")
        unused = await asyncio.wait_for(run_on_command(
            settings, _config(live_map), token=TOKEN, commands=idle,
            emit=lambda e: None, stop_event=asyncio.Event()), TIMEOUT)
        return ready, stats, unused

    ready, stats, unused = asyncio.run(scenario())
    assert "token" not in json.dumps(ready).lower()
    assert stats["processed"] == stats["stored_rows"] == len(frames)
    assert sorted(LiveSession.open(live_map.store, ready["session"]).points()["index"]) == list(range(6))
    assert unused is None


@pytest.mark.slow  # two cold session processes (imports, map load, warm-up) at once
def test_two_apps_on_one_machine_both_go_live(live_map, tiled_server, tmp_path):
    """Two apps' live runners (each its own data folder and live source) start at once: real
    `morphospace live --standby` processes, each session on a websocket port of its own, each
    serving its own page's token."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from app.live import LiveRunner
    from tests.conftest import _free_port

    current = {"projection_id": live_map.projection_id, "clustering_id": live_map.clustering_id,
               "n_components": 2}
    runners = [LiveRunner(Settings(
        data_dir=tmp_path / f"app{i}", tiled_uri=tiled_server.uri.split("?")[0],
        tiled_api_key=live_map.api_key, project=live_map.store.project,
        live_source=f"tcp://127.0.0.1:{_free_port()}")) for i in range(2)]

    async def hello(config: dict) -> dict:
        async with Client(config["ws_url"], token=config["token"]) as client:
            return client.of("hello")[0]

    try:
        with ThreadPoolExecutor(2) as pool:
            configs = list(pool.map(lambda runner: runner.start(current), runners))
        hellos = [asyncio.run(hello(config)) for config in configs]
    finally:
        for runner in runners:
            runner.close()
    assert len({urlsplit(c["ws_url"]).port for c in configs}) == 2
    assert configs[0]["token"] != configs[1]["token"]  # two deployments, two secrets
    assert [h["session"] for h in hellos] == [c["session"] for c in configs]


def _run_messages(live_map, messages: list[list[bytes]], **changes):
    """Push raw ZMQ messages (ending with an end marker) through a pipeline (``changes`` to its
    config) watched by a client; returns (pipeline, client, the pipeline's final stats)."""

    def send(endpoint: str) -> None:
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.connect(endpoint)
        for parts in messages:
            sock.send_multipart(parts)
        sock.close(linger=5000)

    async def scenario():
        pipeline = await _pipeline(live_map, **changes)
        async with Client(pipeline.websocket.url) as client:
            await asyncio.to_thread(send, pipeline.info["source"])
            await client.until(lambda: client.of("end"))
        return pipeline, client, await pipeline.stop()

    return asyncio.run(scenario())


def test_malformed_frames_are_reported_and_skipped(live_map):
    """Wrong shape, NaN, a truncated payload and a garbage header become errors; the stream goes on."""
    good = _crops(live_map, 2)

    header, payload = frame_to_parts(3, good[0], "sim")
    pipeline, client, stats = _run_messages(live_map, [
        frame_to_parts(0, good[0], "sim"),
        frame_to_parts(1, good[0][:50], "sim"),  # wrong shape
        frame_to_parts(2, np.full(good[0].shape, np.nan), "sim"),  # all NaN
        [header, payload[:-7]],  # truncated
        [b"{not json", b""],  # unreadable header
        frame_to_parts(4, good[1], "sim"),
        end_parts(6),
    ])
    assert client.indices() == [0, 4]
    errors = {e["index"]: e["reason"] for m in client.of("batch") for e in m["errors"]}
    assert set(errors) == {1, 2, 3, None}
    assert "shape" in errors[1] and "NaN" in errors[2] and "payload" in errors[3]
    assert "header" in errors[None]
    assert sorted(pipeline.session.errors()["index"]) == [-1, 1, 2, 3]
    assert sorted(pipeline.session.points()["index"]) == [0, 4]
    assert stats["errors"] == 4 and stats["processed"] == 2


def test_two_time_maps_get_their_non_equilibrium_measure(live_map):
    """Frames marked two-time get core.xpcs.two_time.non_equilibrium, its noise floor and their
    ring in the table and the websocket; other frames NaN and ""; a marked frame that is not
    square is an error.

    16 x 16 maps, main diagonal left out: a purely diagonal map and a Toeplitz one give 0; the map
    that is 2 where t1, t2 < 2 and 1 elsewhere gives 16/17: its 240 off-diagonal entries (two of
    them 2) have mean 242/240 and sum of squares 2 (238/240)^2 + 238 (2/240)^2 = 119/60; lags +-1
    hold one 2 and fourteen 1s (mean 16/15, squared deviations 196/225 + 14/225 = 14/15 each),
    the other lags are all 1; 2 (14/15) / (119/60) = 16/17. These maps have no noise, so their
    floor is 0. Frames 5 and 6 are the two rings of `simulate --two-time` over a speckle series:
    their floor is noise_floor's with the ring's pixel count, and they say which ring they are.
    """
    lag = np.abs(np.subtract.outer(np.arange(16), np.arange(16)))
    block = np.ones((16, 16))
    block[:2, :2] = 2.0
    maps = {1: np.diag(np.full(16, 2.0)), 2: 1 + 0.3 * np.exp(-lag / 4.0), 3: block}
    rings = RingGeometry((11.5, 11.5)).pixel_rings((24, 24), [2, 6, 11])
    speckle = speckle_counts(np.full(16, 4.0), 24 * 24, 20.0, seed=0).reshape(16, 24, 24)
    ring_maps, ring_meta = two_time_series(speckle, 16, rings=rings, device="cpu")

    pipeline, client, _ = _run_messages(live_map, [
        frame_to_parts(0, np.ones((16, 12)), "sim", TWO_TIME_METADATA),
        *(frame_to_parts(index, C, "sim", TWO_TIME_METADATA) for index, C in maps.items()),
        frame_to_parts(4, np.random.default_rng(0).random((16, 16)), "sim"),
        *(frame_to_parts(5 + i, C, "sim", meta) for i, (C, meta) in enumerate(zip(ring_maps, ring_meta))),
        end_parts(7),
    ])
    points = pipeline.session.points().drop_duplicates("index").set_index("index")
    table = points["non_equilibrium"]
    assert table[1] == 0.0 and table[2] == 0.0 and table[3] == pytest.approx(16 / 17, abs=1e-12)
    assert np.isnan(table[4]) and 0 not in table.index
    assert points.loc[[1, 2, 3], "noise_floor"].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(points.loc[4, "noise_floor"]) and points.loc[4, "ring"] == ""
    for i in range(2):
        expected = noise_floor(ring_maps[i], n_pixels=int(rings.n_pixels[i]), n_surrogates=LIVE_SURROGATES)
        assert points.loc[5 + i, "noise_floor"] == pytest.approx(expected.floor, rel=1e-6)
        assert points.loc[5 + i, "ring"] == rings.label(i) == ring_meta[i]["ring_label"]
    sent = np.concatenate([m["non_equilibrium"] for m in client.of("batch")])
    assert np.allclose(sent, table.loc[client.indices()].to_numpy(), equal_nan=True)  # float32 on the wire
    floors = np.concatenate([m["noise_floor"] for m in client.of("batch")])
    assert np.allclose(floors, points["noise_floor"].loc[client.indices()].to_numpy(), equal_nan=True)
    assert [r for m in client.of("batch") for r in m["ring"]] == points["ring"].loc[client.indices()].tolist()
    assert "square" in pipeline.session.errors().set_index("index").loc[0, "reason"]


def test_backpressure_is_counted_and_no_frame_is_lost(live_map):
    """A producer faster than a one-slot queue makes listeners wait (counted), never drop."""
    frames = _crops(live_map, 30)

    async def scenario():
        pipeline = await _pipeline(live_map, queue_size=1, max_batch=1)
        async with Client(pipeline.websocket.url) as client:
            await asyncio.to_thread(replay_zmq, frames, pipeline.info["source"])  # no rate limit
            await client.until(lambda: client.of("end"))
        stats = await pipeline.stop()
        return pipeline, client, stats

    pipeline, client, stats = asyncio.run(scenario())
    assert stats["backpressure"] > 0
    assert client.indices() == list(range(30))
    assert sorted(pipeline.session.points()["index"]) == list(range(30))
    assert client.of("batch")[-1]["stats"]["backpressure"] > 0
    backlogs = [m["backlog"] for m in client.of("batch")]
    assert {b["bound"] for b in backlogs} == {1}
    assert all(0 <= b["queued"] <= 1 and b["lag_s"] >= 0 for b in backlogs)


def test_live_model_is_channels_last_and_places_frames_as_the_stored_model_does(live_map):
    """The operator's model is laid out channels-last (faster on a CPU) and gives the latents
    the stored (contiguous) model gives."""
    import torch

    from core.maps.encode import encode_images
    from core.models.checkpoint import load_model

    model = live_map.live.model
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    images = read_images(live_map.store, live_map.live.ids["dataset_id"])[:8]
    stored = load_model(live_map.store, live_map.live.ids["model_id"])
    np.testing.assert_allclose(encode_images(model, images)[0], encode_images(stored, images)[0],
                               atol=1e-5)


def test_restarted_operator_resumes_the_session_each_frame_once(live_map):
    """A second run with resume goes on with the stored session: overlapping frames are skipped,
    batch numbers and image rows go on from the stored ones."""
    frames = _crops(live_map, 12)
    session = f"resume-{uuid.uuid4().hex[:6]}"
    ended: list = []  # the session's "ended" as each run starts

    async def run(start: int, stop: int) -> tuple[LivePipeline, Client, dict]:
        pipeline = await _pipeline(live_map, session=session, resume=True)
        ended.append(pipeline.session.node.metadata.get("ended"))
        async with Client(pipeline.websocket.url) as client:
            await asyncio.to_thread(replay_zmq, frames[start:stop], pipeline.info["source"],
                                    start_index=start)
            await client.until(lambda: client.of("end"))
        return pipeline, client, await pipeline.stop()

    first, _, _ = asyncio.run(run(0, 8))
    second, client, stats = asyncio.run(run(5, 12))  # 5, 6, 7 were stored by the first run
    assert second.session.id == first.session.id == session
    assert ended == [None, False]  # new, then live again after the first run's stop
    assert second.session.node.metadata["ended"] is True  # stopped again
    assert stats["skipped"] == 3 and stats["processed"] == 4
    assert client.of("hello")[0]["next_seq"] == first.operator.seq
    assert client.of("hello")[0]["started_seq"] == first.operator.seq  # where a page re-reads from
    assert client.indices() == [8, 9, 10, 11]
    points = second.session.points()
    assert sorted(points["index"]) == list(range(12))
    assert sorted(points["row"]) == list(range(12))
    assert sorted(set(points["batch"])) == list(range(second.operator.seq))


def test_a_bad_frame_sent_again_after_a_restart_is_reported_once(live_map):
    """A detector re-sends frames 1-3 to a resumed session: frame 2, stored as an error by the
    first run, is skipped like the stored points (no second error row, nothing re-sent to the
    page), and the replay route gives its error once, with the batch that reported it."""
    good = _crops(live_map, 5)
    session = f"errors-{uuid.uuid4().hex[:6]}"
    wrong = good[2][:50]  # wrong shape: reported, not placed
    first, client1, _ = _run_messages(live_map, [
        frame_to_parts(0, good[0], "sim"), frame_to_parts(1, good[1], "sim"),
        frame_to_parts(2, wrong, "sim"), frame_to_parts(3, good[3], "sim"), end_parts(4),
    ], session=session, resume=True)
    second, client2, stats = _run_messages(live_map, [
        frame_to_parts(1, good[1], "sim"), frame_to_parts(2, wrong, "sim"),
        frame_to_parts(3, good[3], "sim"), frame_to_parts(4, good[4], "sim"), end_parts(5),
    ], session=session, resume=True)
    assert [e["index"] for m in client1.of("batch") for e in m["errors"]] == [2]
    assert [e["index"] for m in client2.of("batch") for e in m["errors"]] == []
    assert client2.indices() == [4] and stats["skipped"] == 3
    errors = second.session.errors()
    assert errors["index"].tolist() == [2]
    reported_by = [m["seq"] for m in client1.of("batch") if m["errors"]]
    assert errors["batch"].tolist() == reported_by
    replay = points_message(second.session.points(), session, 0, None, errors)
    assert [e["index"] for e in replay["errors"]] == [2] and "shape" in replay["errors"][0]["reason"]
    assert sorted(from_typed_array(replay["index"]).tolist()) == [0, 1, 3, 4]


def test_slow_client_does_not_stall_the_stream_or_a_fast_client():
    """A client that stops reading loses its oldest batches (told by a gap); the others get all."""
    n_batches, rows = 150, 1500

    def batch(seq: int) -> ResultBatch:
        index = np.arange(seq * rows, (seq + 1) * rows)
        return ResultBatch(seq=seq, index=index, patch=np.full(rows, -1), row=index,
                           source=["s"] * rows, images=np.zeros((rows, 0, 0), np.float32),
                           coords=np.random.default_rng(seq).normal(size=(rows, 2)),
                           cluster=np.zeros(rows), non_equilibrium=np.full(rows, np.nan),
                           received=np.zeros(rows), processed=0.0, timings={})

    async def scenario():
        server = WebSocketPublisher(TOKEN, session="s", client_buffer=4)
        await server.start()
        slow_sock = socket.create_connection(("127.0.0.1", server.port))
        slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with Client(server.url) as fast, Client(server.url, sock=slow_sock, max_queue=1) as slow:
            slow.task.cancel()  # the slow client stops reading altogether
            loop = asyncio.get_running_loop()
            started = loop.time()
            for seq in range(n_batches):
                await server.publish(batch(seq))
                await asyncio.sleep(0)  # let client senders run, as between real batches
            publish_seconds = loop.time() - started
            await fast.until(lambda: len(fast.of("batch")) == n_batches)
            slow_client = next(c for c in server.clients if c.dropped)
            slow.ws.transport.abort()  # a vanished browser: no close handshake to wait for
            await server.stop(flush_timeout=0)
        return fast, slow_client, publish_seconds

    fast, slow_client, publish_seconds = asyncio.run(scenario())
    assert [m["seq"] for m in fast.of("batch")] == list(range(n_batches)) and not fast.of("gap")
    assert slow_client.dropped > 0 and len(slow_client.pending) <= 4
    assert publish_seconds < 10


def test_zmq_frame_encoding_round_trips_and_rejects_nonsense():
    """The two-part ZMQ format keeps dtype, shape and values; bad messages become errors."""
    array = np.arange(12, dtype=">u2").reshape(3, 4)
    frame = frame_from_parts(frame_to_parts(7, array, "det", {"exposure": 0.1}), "tcp://x")
    assert frame.index == 7 and np.array_equal(frame.array, array)
    assert frame.metadata == {"exposure": 0.1}
    assert isinstance(frame_from_parts(end_parts(5), "tcp://x"), StreamEnd)
    header = json.dumps({"index": 1, "dtype": "O", "shape": [2]}).encode()
    assert isinstance(frame_from_parts([header, b"12345678"], "tcp://x"), FrameError)
    assert isinstance(frame_from_parts([b"[1]"], "tcp://x"), FrameError)


class _Sink:
    """Stands in for the operator: collects what a listener submits."""

    def __init__(self, want: int):
        self.items, self.want, self.done = [], want, asyncio.Event()

    async def submit(self, item) -> None:
        self.items.append(item)
        if len(self.items) >= self.want:
            self.done.set()


def test_folder_listener_reads_complete_files_and_reports_bad_ones(tmp_path, live_map):
    """Frames written into a watched folder arrive in order; an unreadable file is an error."""
    frames = _crops(live_map, 4)

    async def scenario():
        sink = _Sink(want=5)
        listener = FolderListener.from_folder(sink, tmp_path, roots=[tmp_path], settle=0.02)
        task = asyncio.create_task(listener.start())
        await asyncio.sleep(0)  # the watch begins at the listener's first await
        await asyncio.to_thread(replay_folder, frames, tmp_path)
        (tmp_path / "zz_broken.npy").write_bytes(b"not an npy file")
        await asyncio.wait_for(sink.done.wait(), TIMEOUT)
        await listener.stop()
        await asyncio.gather(task, return_exceptions=True)
        return sink.items

    items = asyncio.run(scenario())
    assert [item.index for item in items] == [0, 1, 2, 3, 4]
    assert all(np.array_equal(item.array, f) for item, f in zip(items, frames))
    assert isinstance(items[4], FrameError) and "zz_broken" in items[4].source
    with pytest.raises(PermissionError):
        FolderListener.from_folder(_Sink(1), tmp_path, roots=[tmp_path / "elsewhere"])


def test_tiled_listener_picks_up_appended_frames(live_map):
    """Frames appended to a Tiled array node after the listener started arrive, indexed by position."""
    frames = _crops(live_map, 5).astype(np.float32)
    node = live_map.store.root.create_container(f"det-{uuid.uuid4().hex[:6]}")
    array = node.write_array(frames[:3], key="frames")

    async def scenario():
        sink = _Sink(want=5)
        listener = TiledFrameListener(sink, array, "det", poll=0.05)
        task = asyncio.create_task(listener.start())
        await asyncio.to_thread(array.patch, frames[3:], offset=3, extend=True)
        await asyncio.wait_for(sink.done.wait(), TIMEOUT)
        await listener.stop()
        await asyncio.gather(task, return_exceptions=True)
        return sink.items

    items = asyncio.run(scenario())
    assert [item.index for item in items] == list(range(5))
    assert np.array_equal(np.stack([item.array for item in items]), frames)
    assert items[4].source == "det[4]"


def test_cli_simulate_writes_frames_and_refuses_bad_input(tmp_path, capsys):
    """`morphospace simulate` replays a series into a folder; a missing file is one error line."""
    from app.cli import main

    assert main(["simulate", str(DEMO_DATA / "colloids_brightfield.npz"), "--folder",
                 str(tmp_path / "out"), "--rate", "0"]) == 0
    assert len(list((tmp_path / "out").glob("frame_*.npy"))) == 50
    assert main(["simulate", str(tmp_path / "missing.npz"), "--folder", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
