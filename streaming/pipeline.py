"""Live mode as one asyncio program: listener -> operator -> Tiled table + websocket.

::

    listener (ZMQ | folder | Tiled) --submit--> [bounded queue] --> LiveOperator (worker thread)
        --> TiledPublisher (/<project>/live/<session>: images, points, errors)
        --> WebSocketPublisher (every connected browser)

:func:`run_pipeline` is what ``morphospace live`` runs; :func:`run_on_command` is what the web
app's session process runs (the map loaded and warmed up while it is shown, the session started
by a command); :class:`LivePipeline` is the same in pieces, for tests. Stopping is orderly: the listener stops taking frames, the
operator processes everything already queued, the Tiled publisher writes everything it holds,
and browsers get what is buffered for them before the server closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.data.imageio import strip_query
from core.live.session import LiveSession
from streaming.backlog import DEFAULT_BYTES
from streaming.listeners import listener_for
from streaming.operator import LiveModel, LiveOperator
from streaming.publishers import TiledPublisher, WebSocketPublisher

log = logging.getLogger(__name__)


class LiveConfig(BaseModel):
    """What a live session runs; validated before anything starts."""

    model_config = ConfigDict(extra="forbid")

    projection_id: str = Field(..., description="The map to place frames on (its model, "
                               "dataset preprocessing and fitted projection are used).")
    source: str = Field(..., description="tcp://HOST:PORT (ZMQ), tiled+http(s)://... (a growing "
                        "array node) or a folder path.")
    clustering_id: str | None = Field(None, description="A clustering of that map; none: -1.")
    session: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                description="Session id; default a new live-<time>-<hex>.")
    ws_host: str = "127.0.0.1"
    ws_port: int = Field(0, ge=0, le=65535, description="Websocket port; 0: a free one the system "
                         "gives (two sessions on one machine never clash); a named port that is "
                         "taken is an error.")
    max_batch: int = Field(32, ge=1, le=4096)
    queue_size: int = Field(64, ge=1, le=65536, description="Frames that may wait for the "
                            "operator; beyond that the listener waits (nothing is dropped).")
    queue_bytes: int = Field(DEFAULT_BYTES, ge=1, description="Bytes of frames that may wait "
                             "(default 256 MiB); with queue_size the bound on the queue's memory.")
    resume: bool = Field(False, description="With `session`: when that session exists, go on "
                         "with it after the frames it already stored (a restarted operator), "
                         "skipping frames stored before.")
    client_buffer: int = Field(256, ge=1, le=65536, description="Batches per slow browser.")
    zmq_kind: Literal["pull", "sub"] = "pull"
    bind: bool = Field(True, description="ZMQ: bind the address (producers connect) or connect.")
    stop_at_end: bool = Field(False, description="Stop when a producer sends end-of-stream.")
    device: str = Field("auto", description="Torch device: auto, cpu, cuda or cuda:N.")


class LivePipeline:
    """A wired, not yet started pipeline; build it with :meth:`create`."""

    def __init__(self, operator: LiveOperator, listener: Any, tiled: TiledPublisher,
                 websocket: WebSocketPublisher, session: LiveSession, config: LiveConfig):
        self.operator, self.listener = operator, listener
        self.tiled, self.websocket = tiled, websocket
        self.session, self.config = session, config
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def create(cls, config: LiveConfig, *, store: Any, token: str,
                     roots: list[Path], api_key: str | None = None,
                     live: LiveModel | None = None) -> LivePipeline:
        """Load the map (unless ``live`` is given), open the source, create the session node
        (or, with ``resume``, reopen it)."""
        if live is None:
            live = await asyncio.to_thread(LiveModel.from_store, store, config.projection_id,
                                           config.clustering_id, device=config.device)
        operator = LiveOperator(live, max_batch=config.max_batch, queue_size=config.queue_size,
                                queue_bytes=config.queue_bytes)
        listener = listener_for(operator, config.source, roots=roots, api_key=api_key,
                                bind=config.bind, kind=config.zmq_kind)
        try:
            session, resumed = await asyncio.to_thread(
                _open_session, store, config, live,
                source=getattr(listener, "endpoint", config.source))
        except BaseException:
            await listener.stop()  # releases its socket or watch
            raise
        operator.seq, operator.next_row, operator.skip = (resumed.next_seq, resumed.next_row,
                                                          resumed.skip)
        if hasattr(listener, "next_index"):  # a Tiled array or folder: go on after the stored
            listener.next_index = max(listener.next_index, resumed.next_index)
        tiled = TiledPublisher(session)
        tiled.stored_seq = resumed.next_seq - 1
        websocket = WebSocketPublisher(
            token, session=session.id, host=config.ws_host, port=config.ws_port,
            client_buffer=config.client_buffer, stored_seq=lambda: tiled.stored_seq,
            # started_seq: this process's first batch number. A page that holds batches from
            # there on got them from a process that died before storing them: this one numbers
            # those frames again, and the page reads them anew (assets/live.js).
            hello=lambda: {"table": session.path, "n_components": live.n_components,
                           "stats": operator.stats.as_dict(), "backlog": operator.queue.backlog(),
                           "started_seq": resumed.next_seq},
        )
        websocket.next_seq = resumed.next_seq
        operator.add_publisher(tiled)  # the table first: what a browser sees is being stored
        operator.add_publisher(websocket)
        operator.listeners.append(listener)
        return cls(operator, listener, tiled, websocket, session, config)

    @property
    def info(self) -> dict:
        """Addresses a client needs (no token)."""
        return {"session": self.session.id, "table": self.session.path,
                "ws_url": self.websocket.url,
                "source": getattr(self.listener, "endpoint", self.config.source)}

    async def start(self) -> None:
        await self.tiled.start()
        await self.websocket.start()
        self._tasks = [asyncio.create_task(self.operator.start(), name="operator"),
                       asyncio.create_task(self.listener.start(), name="listener")]

    async def wait(self, stop_event: asyncio.Event | None = None) -> None:
        """Until ``stop_event`` is set, the stream ends (``stop_at_end``) or a part fails."""
        waiters = [asyncio.create_task((stop_event or asyncio.Event()).wait())]
        if self.config.stop_at_end:
            waiters.append(asyncio.create_task(self.operator.ended.wait()))
        done, _ = await asyncio.wait([*waiters, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        for task in self._tasks:
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    async def stop(self) -> dict:
        """Stop taking frames, finish what was taken, store it, flush browsers; final stats."""
        operator_task = self._tasks[0] if self._tasks else None
        await self.listener.stop()
        if operator_task is not None and not operator_task.done():
            await self.operator.close()
            await operator_task
        await self.tiled.stop()
        await self.websocket.stop()
        stats = {**self.operator.stats.as_dict(), "stored_rows": self.tiled.rows,
                 "store_waits": self.tiled.waits, "store_failures": self.tiled.failures,
                 "duplicates_avoided": self.tiled.duplicates_avoided}
        await asyncio.to_thread(self.session.update_metadata, ended=True, stats=stats)
        self._tasks = []
        log.info("live session %s stopped: %s", self.session.id, stats)
        return stats


@dataclass
class Resumed:
    """Where a session goes on: its next batch number and image row, the frames it holds."""

    next_seq: int = 0
    next_row: int = 0
    next_index: int = 0  # after the highest frame index stored (as a point or an error)
    skip: set[int] = field(default_factory=set)


def _open_session(store: Any, config: LiveConfig, live: LiveModel, *,
                  source: str) -> tuple[LiveSession, Resumed]:
    """A new session node, or (``resume`` and it exists) the stored one and where it stopped.

    Batch numbers and image rows go on from the stored ones, so a page's gap filling (by
    ``batch``) and a point's image (by ``row``) work across the restart.
    """
    if config.resume and config.session is not None and LiveSession.exists(store, config.session):
        session = LiveSession.open(store, config.session)
        stored = session.columns("points", ["index", "batch", "row"])
        errors = session.errors()  # whole: a session stored before errors had a batch has none
        reported, reported_by = (errors[c].to_numpy(np.int64) for c in ("index", "batch"))
        # Frames stored as points or reported as errors are done: a source that sends them again
        # (a detector re-sending after the restart) must not place or report them twice.
        resumed = Resumed(int(max(stored["batch"].max(initial=-1), reported_by.max(initial=-1))) + 1,
                          int(stored["row"].max(initial=-1)) + 1,
                          int(max(stored["index"].max(initial=-1), reported.max(initial=-1))) + 1,
                          set(stored["index"].tolist()) | set(reported[reported >= 0].tolist()))
        session.update_metadata(ended=False)  # live again (the stop of the run before set it)
        log.info("resuming live session %s after %d stored points (batch %d on)", session.id,
                 len(stored["index"]), resumed.next_seq)
        return session, resumed
    metadata = {**live.ids, "source": strip_query(source),
                "preprocess": asdict(live.preprocess), "projector": live.projector.method,
                "cluster_method": live.clusters.method, "max_batch": config.max_batch}
    session = LiveSession.create(store, n_components=live.n_components, metadata=metadata,
                                 id=config.session)
    return session, Resumed()


async def run_pipeline(
    settings: Any,
    config: LiveConfig,
    *,
    token: str,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[dict], None] | None = None,
    store: Any = None,
    live: LiveModel | None = None,
) -> dict:
    """Run a live session until ``stop_event`` (or end-of-stream with ``stop_at_end``).

    ``settings`` gives the Tiled store (unless ``store`` is passed) and the data roots a
    watched folder must lie in. ``live`` skips loading the map (one already in memory).
    ``on_ready(info)`` is called once everything listens. Returns the final counters.
    """
    if store is None or live is None:
        store, live = await prepare_map(settings, config, store=store)
    pipeline = await LivePipeline.create(config, store=store, token=token,
                                         roots=list(settings.data_roots),
                                         api_key=settings.resolved_tiled_api_key(), live=live)
    await pipeline.start()
    if on_ready is not None:
        on_ready(pipeline.info)
    try:
        await pipeline.wait(stop_event)
    finally:
        stats = await pipeline.stop()
    return stats


async def prepare_map(settings: Any, config: LiveConfig, *, store: Any = None) -> tuple[Any, LiveModel]:
    """The store and the map's :class:`LiveModel`, warmed up (see :meth:`LiveOperator.warm_up`)."""
    clock = time.perf_counter()
    if store is None:
        from core.data.store import Store

        store = await asyncio.to_thread(Store.from_settings, settings)
    live = await asyncio.to_thread(LiveModel.from_store, store, config.projection_id,
                                   config.clustering_id, device=config.device)
    loaded = time.perf_counter()
    await asyncio.to_thread(LiveOperator(live).warm_up)
    log.info("map %s loaded in %.1f s (model, projection, clustering: %s), warmed up in %.1f s",
             config.projection_id, loaded - clock, live.clusters.method, time.perf_counter() - loaded)
    return store, live


async def run_on_command(
    settings: Any,
    config: LiveConfig,
    *,
    token: str,
    commands: asyncio.StreamReader,
    emit: Callable[[dict], None],
    stop_event: asyncio.Event,
) -> dict | None:
    """Load and warm up the map now; run the session from a ``start`` line of ``commands`` until
    a ``stop`` line, the end of ``commands`` (whoever sent them is gone) or ``stop_event``.

    Why: starting a process, importing torch, loading the model from Tiled and the first calls
    take seconds (tens with UMAP's numba); the web app starts this while a map is shown, so
    pressing Live only opens sockets. ``emit`` reports ``{"event": "warm", "seconds"}`` and, once
    everything listens, ``{"event": "ready", **info}``. Returns the session's final counters, or
    None when stopped before it started.
    """
    started = asyncio.Event()
    follower = asyncio.create_task(_follow(commands, started, stop_event))
    try:
        clock = time.perf_counter()
        store, live = await prepare_map(settings, config)
        emit({"event": "warm", "seconds": round(time.perf_counter() - clock, 3)})
        waiters = [asyncio.create_task(started.wait()), asyncio.create_task(stop_event.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if not started.is_set():
            return None
        return await run_pipeline(settings, config, token=token, stop_event=stop_event, store=store,
                                  live=live, on_ready=lambda info: emit({"event": "ready", **info}))
    finally:
        follower.cancel()


async def _follow(commands: asyncio.StreamReader, started: asyncio.Event, stop: asyncio.Event) -> None:
    while line := await commands.readline():
        word = line.decode(errors="replace").strip()
        if word == "start":
            started.set()
        elif word == "stop":
            break
        elif word:
            log.warning("ignored an unknown command %r (start, stop)", word[:40])
    stop.set()
