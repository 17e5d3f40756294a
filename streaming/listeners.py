"""Where live frames come from: ZMQ, a folder a detector writes into, a growing Tiled array.

Each listener is an :class:`arroyopy.Listener` that hands every frame (or a
:class:`~streaming.messages.FrameError` for one it could not read) to
``await operator.submit(item)``. That call waits while the operator's bounded queue is full, so a
fast producer is slowed down (ZMQ's own buffers then fill and the sender blocks) instead of
frames being dropped. ``start()`` runs until ``stop()``, which cancels a pending read but lets a
frame already read finish reaching the queue.

arroyopy's own listeners are not reused, for these reasons (arroyopy 0.2.2):

* ``ZMQListener.from_socket`` calls ``ZMQListener(zmq_socket)`` without the operator argument
  and fails with a TypeError (``arroyopy/zmq.py:36``); its ``start()`` hands raw bytes straight
  to ``operator.process`` (``zmq.py:49``), bypassing any queue, so there is no backpressure and
  the result is never published; it swallows ``CancelledError`` inside its loop
  (``zmq.py:53-55``), so its task cannot be cancelled; it polls with a 100 ms ``RCVTIMEO``
  (``zmq.py:41``); and ``stop()`` terminates the socket's *context* (``zmq.py:60``), closing every
  other socket sharing it. :class:`ZMQFrameListener` awaits ``recv_multipart`` (cancellable, no
  polling), decodes multipart frames, and closes only its own socket and context.
* ``FileWatcherListener`` reports every filesystem event, including half-written files and
  deletions (``arroyopy/files.py:27-34``), cannot be stopped (``stop()`` is a no-op,
  ``files.py:36``), and importing ``arroyopy.files`` adds a handler to, and sets the level of,
  a logger as a side effect (``files.py:10-12``). :class:`FolderListener` watches with a stop
  event, waits until a file's size stops changing, reads it with :mod:`core.data.imageio`, and never
  imports that module.
* arroyopy's ``Listener.__init__`` is kept (it stores the operator); ``ZMQListener`` skips it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import numpy as np
from arroyopy import Listener

from core.data.imageio import SUPPORTED_EXTENSIONS, ImageReadError, Source, read_frames, strip_query
from streaming.messages import Frame, FrameError, StreamEnd, frame_from_parts

log = logging.getLogger(__name__)

# What a read from a server that is down or restarting raises (httpx, under Tiled's client, has
# transport errors of its own, not ConnectionError): the stream waits, no frame becomes an error.
UNREACHABLE = (ConnectionError, TimeoutError, httpx.TransportError)


class FrameSink(Protocol):
    """What a listener needs of the operator."""

    async def submit(self, item: Frame | FrameError | StreamEnd) -> None: ...


class _StoppableListener(Listener):
    """``stop()`` cancels a pending read, but lets a frame already read reach the queue."""

    def __init__(self, operator: FrameSink):
        super().__init__(operator)
        self._task: asyncio.Task | None = None
        self._stopped = asyncio.Event()
        self._busy = False  # inside operator.submit: cancelling now would lose a received frame

    async def start(self) -> None:
        self._task = asyncio.current_task()
        try:
            await self._run()
        finally:
            self._close()

    async def stop(self) -> None:
        self._stopped.set()
        task = self._task
        if task is None:  # never started
            self._close()
        elif task is not asyncio.current_task():
            if not self._busy:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # a busy one ends after its submit

    async def _submit(self, item: Frame | FrameError | StreamEnd) -> None:
        self._busy = True
        try:
            await self.operator.submit(item)
        finally:
            self._busy = False

    async def _run(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release resources when ``start()`` ends, however it ends."""


# -- ZMQ --------------------------------------------------------------------------------------
class ZMQFrameListener(_StoppableListener):
    """Frames over ZMQ, in the two-part format of :mod:`streaming.messages`.

    PULL (the default) never loses a frame: when the operator is behind, the socket stops being
    read, its high-water mark fills and the sender's ``send`` blocks. SUB is for detectors that
    publish to several consumers; by ZMQ's design a SUB socket drops what arrives before it is
    connected and whatever overflows its high-water mark.
    """

    def __init__(self, operator: FrameSink, socket: Any, endpoint: str):
        super().__init__(operator)
        self.socket = socket
        self.endpoint = endpoint

    @classmethod
    def from_address(
        cls,
        operator: FrameSink,
        address: str,
        *,
        kind: Literal["pull", "sub"] = "pull",
        bind: bool = True,
        hwm: int = 100,
    ) -> ZMQFrameListener:
        """Open a socket on ``address`` (``tcp://127.0.0.1:5555``; ``:*`` picks a free port).

        ``bind=True`` (default) makes the pipeline the fixed end producers connect to; pass
        ``bind=False`` for detectors that bind themselves. ``hwm`` frames wait in ZMQ's buffer
        before the sender blocks (PULL) or frames are dropped (SUB).
        """
        import zmq
        import zmq.asyncio

        if kind not in ("pull", "sub"):
            raise ValueError(f"kind={kind!r} must be 'pull' or 'sub'")
        # A context of its own: Context.instance() is shared per class hierarchy, so whichever
        # of zmq.Context / zmq.asyncio.Context asks first decides what the other one gets.
        context = zmq.asyncio.Context()
        socket = context.socket(zmq.PULL if kind == "pull" else zmq.SUB)
        socket.setsockopt(zmq.RCVHWM, hwm)
        socket.setsockopt(zmq.LINGER, 0)
        if kind == "sub":
            socket.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            if bind:
                socket.bind(address)
                address = socket.getsockopt(zmq.LAST_ENDPOINT).decode()
            else:
                socket.connect(address)
        except zmq.ZMQError as exc:
            socket.close()
            context.term()
            raise ValueError(
                f"cannot {'bind' if bind else 'connect'} a ZMQ {kind.upper()} socket to "
                f"{address!r}: {exc}; check the address (tcp://HOST:PORT) and that the port is free"
            ) from exc
        return cls(operator, socket, address)

    async def _run(self) -> None:
        log.info("listening for frames on %s", self.endpoint)
        while not self._stopped.is_set():
            parts = await self.socket.recv_multipart()
            await self._submit(frame_from_parts(parts, self.endpoint))

    def _close(self) -> None:
        context = self.socket.context
        self.socket.close(linger=0)
        context.term()  # its own context (see from_address), so no other socket is affected


# -- folder ----------------------------------------------------------------------------------
class FolderListener(_StoppableListener):
    """New image files in a folder (not recursive), frame by frame, in order of arrival.

    A file is read once its size has stayed the same for ``settle`` seconds; a file that still
    cannot be read then is reported as a :class:`FrameError`. Hidden files and unsupported
    extensions are ignored, so a writer that writes ``.name.part`` and renames it when done
    (what :func:`streaming.simulator.replay_folder` does) is never seen half-written. Each file
    is read once, even if it is modified later. Frames are numbered from ``start_index`` in the
    order they are read; ``source`` is the file, ``metadata["frame_in_file"]`` the frame in it.
    """

    def __init__(self, operator: FrameSink, folder: Path, *, settle: float = 0.1,
                 start_index: int = 0):
        super().__init__(operator)
        self.folder = folder
        self.settle = settle
        self.next_index = start_index
        self._seen: set[Path] = set()

    @classmethod
    def from_folder(cls, operator: FrameSink, folder: str | Path, *, roots: Sequence[Path],
                    settle: float = 0.1) -> FolderListener:
        """Watch ``folder``, which must exist and lie inside one of ``roots`` (data roots)."""
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"{str(folder)!r} is not a folder; create it first")
        if not any(path.is_relative_to(Path(root).expanduser().resolve()) for root in roots):
            raise PermissionError(
                f"{str(path)!r} is outside the allowed data roots {[str(r) for r in roots]}; "
                "add it to MORPHOSPACE_DATA_ROOTS"
            )
        return cls(operator, path, settle=settle)

    async def _run(self) -> None:
        from watchfiles import Change, awatch

        log.info("watching %s for new frames", self.folder)
        async for changes in awatch(self.folder, stop_event=self._stopped, recursive=False,
                                    debounce=400, step=20):
            paths = sorted({Path(p) for change, p in changes if change != Change.deleted})
            for path in paths:
                if self._stopped.is_set():
                    return
                if self._wanted(path):
                    await self._read_when_complete(path)

    def _wanted(self, path: Path) -> bool:
        return (path not in self._seen and path.parent == self.folder
                and not path.name.startswith(".")
                and path.suffix.lower() in SUPPORTED_EXTENSIONS)

    async def _read_when_complete(self, path: Path) -> None:
        size = -1
        while True:  # wait until the size holds still for `settle` seconds
            try:
                now = path.stat().st_size
            except FileNotFoundError:
                return  # gone again (a temporary file of some writer)
            if now == size:
                break
            size = now
            await asyncio.sleep(self.settle)
        self._seen.add(path)
        try:
            frames = await asyncio.to_thread(lambda: list(read_frames(Source(path))))
        except ImageReadError as exc:
            await self._submit(FrameError(self.next_index, str(path), str(exc)))
            self.next_index += 1
            return
        for frame, meta in frames:
            await self._submit(Frame(self.next_index, str(path), frame, meta))
            self.next_index += 1


# -- Tiled -----------------------------------------------------------------------------------
class TiledFrameListener(_StoppableListener):
    """New frames appended along the first axis of a Tiled array node (N, H, W).

    Tiled 0.2's websocket subscriptions need a Redis-backed server, so the node is polled every
    ``poll`` seconds; new frames are read in blocks. A frame's index is its position in the
    array; ``source`` is ``<node uri>[i]``. While the server cannot be reached (a restart) the
    listener keeps trying: the frames stay in Tiled, so none is lost. A resumed session starts
    after the frames it stored (``next_index``, set by the pipeline).
    """

    def __init__(self, operator: FrameSink, node: Any, label: str, *, poll: float = 0.5,
                 start_index: int = 0, block: int = 32):
        super().__init__(operator)
        self.node, self.label, self.poll = node, label, poll
        self.next_index = start_index
        self.block = block

    @classmethod
    def from_uri(cls, operator: FrameSink, uri: str, *, api_key: str | None = None,
                 poll: float = 0.5, start_index: int = 0) -> TiledFrameListener:
        from core.data.imageio import open_tiled_array

        node = open_tiled_array(uri, api_key)
        return cls(operator, node, strip_query(uri.removeprefix("tiled+")), poll=poll,
                   start_index=start_index)

    async def _run(self) -> None:
        log.info("polling %s for new frames every %.2g s", self.label, self.poll)
        while not self._stopped.is_set():
            try:
                await self._read_new()
            except UNREACHABLE as exc:  # Tiled restarting: the frames wait there, read them later
                log.warning("Tiled node %s unreachable (%s); trying again in %.2g s",
                            self.label, type(exc).__name__, self.poll)
            try:
                await asyncio.wait_for(self._stopped.wait(), self.poll)
            except TimeoutError:
                pass

    async def _read_new(self) -> None:
        """Submit every frame appended since the last call, block by block."""
        await asyncio.to_thread(self.node.refresh)
        total = int(self.node.shape[0])
        while self.next_index < total and not self._stopped.is_set():
            stop = min(total, self.next_index + self.block)
            start = self.next_index
            try:
                block = await asyncio.to_thread(lambda: np.asarray(self.node[start:stop]))
            except UNREACHABLE:
                raise
            except Exception as exc:  # noqa: BLE001  a bad read is reported, the stream goes on
                for i in range(start, stop):
                    await self._submit(FrameError(i, f"{self.label}[{i}]",
                                                  f"could not read: {exc}"))
            else:
                received = time.time()
                for offset, frame in enumerate(block):
                    i = start + offset
                    await self._submit(Frame(i, f"{self.label}[{i}]", frame, received=received))
            self.next_index = stop


def listener_for(operator: FrameSink, source: str, *, roots: Sequence[Path],
                 api_key: str | None = None, bind: bool = True,
                 kind: Literal["pull", "sub"] = "pull") -> Listener:
    """The listener a source string asks for: ``tcp://``/``ipc://`` -> ZMQ, ``tiled+http(s)://``
    -> Tiled, anything else a folder."""
    if source.startswith(("tcp://", "ipc://")):
        return ZMQFrameListener.from_address(operator, source, kind=kind, bind=bind)
    if source.startswith(("tiled+http://", "tiled+https://")):
        return TiledFrameListener.from_uri(operator, source, api_key=api_key)
    return FolderListener.from_folder(operator, source, roots=roots)
