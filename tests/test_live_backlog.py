"""Live mode's bounds and exactly-once storage: the operator queue, a retried append."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import numpy as np
import pytest

from core.live.session import LiveSession
from streaming.backlog import FrameQueue
from streaming.messages import Frame, FrameError, ResultBatch
from streaming.publishers import TiledPublisher


def _frame(index: int, nbytes: int = 100, received: float | None = None) -> Frame:
    return Frame(index, "test", np.zeros(nbytes, np.uint8),
                 received=time.time() if received is None else received)


async def _blocked(queue: FrameQueue, item) -> asyncio.Task:
    """Start ``queue.put(item)`` and return its task once it has had every chance to finish."""
    task = asyncio.create_task(queue.put(item))
    for _ in range(5):
        await asyncio.sleep(0)
    return task


def test_queue_bounds_frames_and_bytes_and_waits_instead_of_dropping():
    """A full queue (by count or by bytes) holds the producer until a batch is taken; none lost."""
    async def scenario():
        by_count = FrameQueue(max_frames=2, max_bytes=10_000)
        await by_count.put(_frame(0))
        await by_count.put(_frame(1))
        third = await _blocked(by_count, _frame(2))
        assert not third.done() and by_count.qsize() == 2
        assert [f.index for f in await by_count.get_batch(1)] == [0]
        await asyncio.wait_for(third, 1)
        assert [f.index for f in await by_count.get_batch(10)] == [1, 2]

        by_bytes = FrameQueue(max_frames=64, max_bytes=250)
        await by_bytes.put(_frame(0, 100))
        await by_bytes.put(_frame(1, 100))  # 200 bytes
        third = await _blocked(by_bytes, _frame(2, 100))  # 300 > 250
        assert not third.done() and by_bytes.nbytes == 200
        await by_bytes.put(FrameError(9, "test", "unreadable"))  # holds no bytes: fits
        await by_bytes.get_batch(1)
        await asyncio.wait_for(third, 1)
        assert by_bytes.nbytes == 200 and by_bytes.max_seen == 3

        big = FrameQueue(max_frames=4, max_bytes=50)
        await asyncio.wait_for(big.put(_frame(0, 1000)), 1)  # alone it passes: no deadlock
        assert not big.fits(_frame(1, 1))

    asyncio.run(scenario())


def test_backlog_says_frames_queued_and_lag():
    """backlog(): frames waiting, seconds since the oldest unpublished frame arrived, the bound."""
    async def scenario():
        queue = FrameQueue(max_frames=8)
        now = time.time()
        assert queue.backlog(since=now - 0.25)["lag_s"] == pytest.approx(0.25, abs=0.05)
        await queue.put(_frame(0, received=now - 2.0))
        await queue.put(_frame(1, received=now - 1.0))
        backlog = queue.backlog(since=now - 5.0)  # the queue's oldest counts, not `since`
        assert backlog["queued"] == 2 and backlog["bound"] == 8
        assert backlog["lag_s"] == pytest.approx(2.0, abs=0.05)

    asyncio.run(scenario())


def _batch(seq: int, rows: np.ndarray) -> ResultBatch:
    n = len(rows)
    return ResultBatch(seq=seq, index=rows.astype(np.int64), patch=np.full(n, -1, np.int32),
                       row=rows.astype(np.int64), source=["test"] * n,
                       images=np.ones((n, 4, 4), np.float32), coords=np.zeros((n, 2), np.float32),
                       cluster=np.zeros(n, np.int32), non_equilibrium=np.full(n, np.nan),
                       received=np.full(n, 1.0), processed=2.0, timings={},
                       errors=[FrameError(1000 + seq, "test", "bad", 3.0 + seq)])


def test_retried_append_stores_each_row_once(store, monkeypatch):
    """An append that fails after the server stored it (lost response) is not stored twice."""
    session = LiveSession.create(store, n_components=2, metadata={})
    stored_then_failed = set()

    def lossy(name):
        real = getattr(session, f"append_{name}")

        def append(rows):
            real(rows)
            if name not in stored_then_failed:  # the first try lands, its answer is lost
                stored_then_failed.add(name)
                raise ConnectionError("response lost")
        return append

    for name in ("points", "errors"):
        monkeypatch.setattr(session, f"append_{name}", lossy(name))

    async def scenario():
        publisher = TiledPublisher(session)
        await publisher.start()
        await publisher.publish(_batch(0, np.arange(0, 5)))
        await asyncio.wait_for(publisher.wait_stored(0), 30)  # not stop(): its write is a last try
        await publisher.stop()
        return publisher

    publisher = asyncio.run(scenario())
    points = session.points()
    assert sorted(points["row"]) == [0, 1, 2, 3, 4]
    assert session.errors()["index"].tolist() == [1000]
    assert publisher.failures == 2 and publisher.duplicates_avoided == 6  # 5 points + 1 error
    assert publisher.stored_seq == 0


def test_a_client_dropped_by_the_network_is_no_server_error(caplog):
    """A browser whose connection drops without a close frame (Wi-Fi, a proxy) is let go with
    an info line, not a "connection handler failed" traceback on every drop of a beamtime."""
    from websockets.asyncio.client import connect

    from streaming.publishers import WebSocketPublisher

    async def scenario():
        server = WebSocketPublisher("token-0123456789", session="s")
        await server.start()
        async with connect(server.url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "token-0123456789"}))
            assert json.loads(await ws.recv())["type"] == "hello"
            ws.transport.abort()
        await server.stop()  # returns once every connection handler has finished

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert "gone without closing" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
