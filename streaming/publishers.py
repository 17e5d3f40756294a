"""Where results go: every open browser (websocket) and the session's Tiled table.

Both are :class:`arroyopy.Publisher` subclasses (arroyopy 0.2.2 ships only a Redis publisher).
``publish`` never waits on a browser: the websocket publisher encodes a batch once and drops it
into a bounded buffer per client, sent by that client's own task. The Tiled publisher appends
in a worker thread behind a bounded queue: when Tiled is slower than the stream, ``publish``
waits, which holds the operator and, through its queue, the listener -- nothing is dropped.

Slow browsers: when a client's buffer is full its *oldest* batch is dropped (the newest points
matter most on a live map) and, before its next batch, the client is sent
``{"type": "gap", "first_seq", "last_seq", "n_batches", "first_index", "last_index"}``; the
batches of that range are in the Tiled table (column ``batch``) once ``stored_seq`` has reached
``last_seq``, so the page can fill the hole from there.

Security: the server binds 127.0.0.1 by default; a client's first message after the connection
opens must be ``{"type": "auth", "token": ...}`` (compared with :func:`hmac.compare_digest`,
within ``auth_timeout`` seconds), otherwise the connection is closed with code 1008 (policy
violation) -- a close code, rather than an HTTP 403, because a browser's ``WebSocket`` can read
a close code and stop retrying, while a refused handshake looks to it just like a server that is
down. The token travels in a message rather than the URL (``?token=``), because browsers print a
failed socket's URL in the console and proxies log URLs; it never appears in logs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from arroyopy import Publisher
from websockets.exceptions import ConnectionClosed

from core.live.session import LiveSession
from streaming.backlog import DEFAULT_BYTES, FrameQueue
from streaming.messages import ResultBatch, StreamEnd, encode_batch

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008


@dataclass
class _Item:
    """One encoded batch waiting for one client."""

    seq: int
    first_index: int | None
    last_index: int | None
    payload: str


class _Client:
    """A connected browser: a bounded buffer of encoded batches and the task that sends them."""

    def __init__(self, connection: Any, hello: str, maxlen: int):
        self.connection = connection
        self.hello = hello  # always sent first, never dropped
        self.maxlen = maxlen
        self.pending: deque[_Item] = deque()
        self.wakeup = asyncio.Event()
        self.gap: dict | None = None
        self.dropped = 0

    def offer(self, item: _Item) -> None:
        if len(self.pending) >= self.maxlen:
            self._note_dropped(self.pending.popleft())
        self.pending.append(item)
        self.wakeup.set()

    def _note_dropped(self, item: _Item) -> None:
        self.dropped += 1
        if self.gap is None:
            self.gap = {"type": "gap", "first_seq": item.seq, "last_seq": item.seq,
                        "n_batches": 0, "first_index": item.first_index,
                        "last_index": item.last_index}
        gap = self.gap
        gap["last_seq"] = item.seq
        gap["n_batches"] += 1
        for key, pick in (("first_index", min), ("last_index", max)):
            values = [v for v in (gap[key], getattr(item, key)) if v is not None]
            gap[key] = pick(values) if values else None

    async def run(self) -> None:
        await self.connection.send(self.hello)
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.gap is not None or self.pending:
                if self.gap is not None:  # the dropped batches are older than all pending ones
                    message, self.gap = json.dumps(self.gap), None
                else:
                    message = self.pending.popleft().payload
                await self.connection.send(message)

    @property
    def idle(self) -> bool:
        return not self.pending and self.gap is None


class WebSocketPublisher(Publisher):
    """Sends each result batch to every connected browser; see the module docstring.

    Parameters
    ----------
    token : str
        Clients must send ``{"type": "auth", "token": <token>}`` first.
    session : str
        Sent in every message, so a page can tell sessions apart.
    host, port : bind address; ``port=0`` (the default) lets the system give a free port (see
        :attr:`port`), so two sessions on one machine never clash; a named port that is taken
        raises an ``OSError`` that says so.
    client_buffer : int, default 256
        Batches that may wait for one client before its oldest is dropped.
    hello : callable returning a dict, optional
        Extra fields for the ``hello`` message sent on connect (table path, stats).
    stored_seq : callable returning int, optional
        The last batch already in the Tiled table, sent with each batch.
    origins : optional list of accepted ``Origin`` headers (None accepts any, e.g. scripts).
    auth_timeout : float, default 10
        Seconds a client has, once connected, to send its token.
    """

    def __init__(self, token: str, *, session: str, host: str = "127.0.0.1", port: int = 0,
                 client_buffer: int = 256, hello: Callable[[], dict] | None = None,
                 stored_seq: Callable[[], int] | None = None,
                 origins: Sequence[str | None] | None = None, auth_timeout: float = 10.0):
        if not token:
            raise ValueError("token must be a non-empty string; generate one with secrets.token_urlsafe()")
        if not (isinstance(client_buffer, int) and client_buffer >= 1):
            raise ValueError(f"client_buffer={client_buffer!r} must be an integer >= 1")
        self._token = token.encode()
        self.session = session
        self.host, self._port = host, port
        self.client_buffer = client_buffer
        self._hello = hello or dict
        self._stored_seq = stored_seq or (lambda: -1)
        self.origins = origins
        self.auth_timeout = auth_timeout
        self.next_seq = 0
        self.clients: set[_Client] = set()
        self._server: Any = None

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1] if self._server else self._port

    @property
    def url(self) -> str:
        """The address without the token (safe to log)."""
        return f"ws://{self.host}:{self.port}/"

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        # compression=None: per-message deflate compresses per connection, so a batch would be
        # compressed once per client, and base64 floats hardly compress anyway.
        try:
            self._server = await serve(self._handle, self.host, self._port, compression=None,
                                       origins=self.origins)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot serve live websockets on {self.host}:{self._port} "
                          f"({exc.strerror}): choose another port, or 0 for a free one") from exc
        log.info("live websocket on %s (session %s)", self.url, self.session)

    async def _authenticated(self, connection: Any) -> bool:
        """Whether the client's first message carries the token (see the module docstring)."""
        try:
            first = json.loads(await asyncio.wait_for(connection.recv(), self.auth_timeout))
        except (TimeoutError, ValueError, ConnectionClosed):
            return False
        given = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self._token)

    async def _handle(self, connection: Any) -> None:
        if not await self._authenticated(connection):
            log.warning("refused a live client from %s: wrong or missing token",
                        connection.remote_address[0])
            await connection.close(POLICY_VIOLATION, "invalid token")
            return
        hello = json.dumps({"type": "hello", "session": self.session, "next_seq": self.next_seq,
                            "stored_seq": self._stored_seq(), **self._hello()})
        client = _Client(connection, hello, self.client_buffer)
        self.clients.add(client)  # no await since the hello was made: no batch slips between
        sender = asyncio.create_task(client.run())
        try:
            async for _ in connection:  # browsers send nothing; reading keeps pings flowing
                pass
        except ConnectionClosed as exc:  # a network drop (no close frame): the page reconnects
            log.info("live client %s gone without closing (%s)", connection.remote_address[0], exc)
        finally:
            self.clients.discard(client)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def publish(self, message: Any) -> None:
        if isinstance(message, ResultBatch):
            index = message.index
            item = _Item(message.seq, int(index.min()) if len(index) else None,
                         int(index.max()) if len(index) else None,
                         encode_batch(message, session=self.session,
                                      stored_seq=self._stored_seq()))
            self.next_seq = message.seq + 1
        elif isinstance(message, StreamEnd):
            item = _Item(self.next_seq - 1, None, None, json.dumps(
                {"type": "end", "session": self.session, "sent": message.sent,
                 "last_seq": self.next_seq - 1}))
        else:
            return
        for client in list(self.clients):
            client.offer(item)

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Give clients up to ``flush_timeout`` s to receive what is buffered, then close."""
        if self._server is None:
            return
        deadline = time.monotonic() + flush_timeout
        while any(not c.idle for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self._server.close()  # closes every connection with 1001 (going away)
        await self._server.wait_closed()
        self._server = None


class TiledPublisher(Publisher):
    """Stores every result in the session: its images, its points and its errors.

    Batches that pile up while a write is in flight are written together, in three steps: the
    images at their rows (first, so every stored point has its image), then the points, then
    the errors. A failed step is retried with back-off (0.5 s doubling to 10 s), holding the
    stream, rather than losing rows; steps already done are not redone. :meth:`stop` tries once
    more and logs any rows it could not write. An append that failed may still have been
    stored (its response lost): its retry first reads which rows the table holds (``row`` for
    points) and sends only the others, so each frame is stored once (rewriting images is
    harmless: they go to fixed rows).
    """

    def __init__(self, session: LiveSession, *, queue_size: int = 64,
                 queue_bytes: int = DEFAULT_BYTES):
        self.session = session
        self.queue = FrameQueue(queue_size, queue_bytes)  # batches, bounded by their images' bytes
        self.stored_seq = -1
        self.rows = 0
        self.waits = 0  # publish calls that found the queue full (Tiled slower than the stream)
        self.failures = 0
        self.duplicates_avoided = 0  # rows a failed append had stored after all, not sent again
        self._retrying: set[str] = set()  # steps of the current write that failed once
        self._stored = asyncio.Condition()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def publish(self, message: Any) -> None:
        if isinstance(message, ResultBatch):
            if not self.queue.fits(message):
                self.waits += 1
            await self.queue.put(message)

    async def stop(self) -> None:
        """Write everything queued, then stop."""
        if self._task is None:
            return
        await self.queue.put(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        done = False
        while not done:
            batches = await self.queue.get_batch(self.queue.max_frames)
            done = None in batches
            batches = [b for b in batches if b is not None]
            if batches:
                await self._write(batches, final=done)

    async def _write(self, batches: list[ResultBatch], *, final: bool) -> None:
        steps = [("points", self._append_once, ("points", _points_columns(batches))),
                 ("errors", self._append_once, ("errors", _error_columns(batches)))]
        placed = [b for b in batches if len(b)]
        if placed:  # images first, so that every stored point has its image
            rows = np.concatenate([b.row for b in placed])
            steps.insert(0, ("images", self.session.put_images,
                             (rows, np.concatenate([b.images for b in placed]))))
        delay = 0.5
        self._retrying.clear()
        while steps:
            name, write, args = steps[0]
            try:
                await asyncio.to_thread(write, *args)
                steps.pop(0)
            except Exception as exc:  # noqa: BLE001  Tiled down or slow: retry, do not drop
                self.failures += 1
                self._retrying.add(name)
                if final:
                    log.error("could not store the %s of %d rows and %d errors of session %s in "
                              "Tiled: %s", ", ".join(s[0] for s in steps), sum(map(len, batches)),
                              sum(len(b.errors) for b in batches), self.session.id, exc)
                    return
                log.warning("Tiled write of the %s failed (%s); retrying in %.1f s", name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(10.0, 2 * delay)
        self.rows += sum(len(b) for b in batches)
        async with self._stored:
            self.stored_seq = batches[-1].seq
            self._stored.notify_all()

    async def wait_stored(self, seq: int) -> None:
        """Until batch ``seq`` (and every one before it) is in the table."""
        async with self._stored:
            await self._stored.wait_for(lambda: self.stored_seq >= seq)

    def _append_once(self, name: str, columns: dict[str, Any]) -> None:
        """Append rows to ``points`` or ``errors``; after a failed try, only those the table
        does not hold yet: a failure may come after the server stored them (a lost response,
        Tiled stopping mid-request), and a frame must be in the table once."""
        if name in self._retrying and len(next(iter(columns.values()))):
            keys = UNIQUE[name]
            stored = set(zip(*self.session.columns(name, list(keys)).values()))
            keep = np.array([key not in stored for key in zip(*(columns[k] for k in keys))], bool)
            if not keep.all():
                log.info("%d of %d %s rows were stored by the failed try; appending the rest",
                         int((~keep).sum()), len(keep), name)
                self.duplicates_avoided += int((~keep).sum())
                columns = {k: (np.asarray(v)[keep] if isinstance(v, np.ndarray)
                               else [x for x, k2 in zip(v, keep) if k2]) for k, v in columns.items()}
        getattr(self.session, f"append_{name}")(columns)


UNIQUE = {"points": ("row",), "errors": ("index", "source", "received")}  # a row's identity


def _points_columns(batches: list[ResultBatch]) -> dict[str, Any]:
    """The points-table columns of one or more (non-empty list of) batches."""
    def cat(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(b, name), dtype=dtype) for b in batches])

    coords = cat("coords", np.float32)  # (n, 2|3)
    columns = {
        "index": cat("index", np.int64), "patch": cat("patch", np.int32),
        "source": [s for b in batches for s in b.source],
        "batch": np.concatenate([np.full(len(b), b.seq, np.int64) for b in batches]),
        "row": cat("row", np.int64),
        "cluster": cat("cluster", np.int32), "non_equilibrium": cat("non_equilibrium", np.float64),
        "noise_floor": np.concatenate([np.asarray(b.floors(), np.float64) for b in batches]),
        "ring": [r for b in batches for r in b.rings()],
        "received": cat("received", np.float64),
        "processed": np.concatenate([np.full(len(b), b.processed) for b in batches]),
    }
    for k, axis in enumerate("xyz"):
        columns[axis] = coords[:, k] if k < coords.shape[1] else np.zeros(len(coords), np.float32)
    return columns


def _error_columns(batches: list[ResultBatch]) -> dict[str, list]:
    errors = [e for b in batches for e in b.errors]
    return {"index": [-1 if e.index is None else e.index for e in errors],
            "source": [e.source for e in errors], "reason": [e.reason for e in errors],
            "received": [e.received for e in errors],
            "batch": [b.seq for b in batches for _ in b.errors]}
