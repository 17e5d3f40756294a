"""What flows through the live pipeline, and how it travels over ZMQ and the websocket.

Messages subclass arroyopy's plain :class:`arroyopy.schemas.Message` as dataclasses rather than
its pydantic models: a frame carries a numpy array, which pydantic would only wrap
(``arbitrary_types_allowed``) and never validate, at a cost on every frame.

Wire formats
------------
ZMQ (detector or simulator -> listener): a two-part message, ``[header, payload]``. The header
is UTF-8 JSON ``{"index", "source", "dtype", "shape", "metadata"}``, the payload the frame's raw
bytes in that dtype and C order (the pyzmq ``send_array`` recipe: no pickles, any language can
send it). ``{"type": "end", "sent": n}`` alone marks the end of a replay.
A frame whose ``metadata["kind"]`` is ``"two-time"`` (:data:`TWO_TIME`) is a two-time
correlation map (``morphospace simulate --two-time`` sends such frames, one per |q| ring, with
``ring_label`` and ``n_pixels`` in the metadata); the operator then also reports its
non-equilibrium measure, its noise floor and its ring.

Websocket (pipeline -> browsers): one JSON text message per batch. Small fields are plain JSON;
the columns are little-endian typed arrays in base64, ``{"dtype": "f4", "bdata": "...",
"shape": [n, 2]}`` -- the same ``dtype``/``bdata`` form Plotly uses for typed arrays. Chosen over
msgpack because a browser decodes it with built-ins (``JSON.parse``, ``atob``,
``Float32Array``) and needs no decoder library shipped in ``assets/``; base64 costs a third more
bytes, which is small next to the source strings. Message types: ``hello`` (on connect),
``batch``, ``gap`` (batches this client missed because it read too slowly), ``end``. A batch's
columns: ``index``, ``patch``, ``row`` (the point's image row in the session's Tiled array),
``coords``, ``cluster``, ``non_equilibrium`` and ``noise_floor`` (NaN but for two-time maps),
``received``; ``ring`` is a list of strings (the ring a two-time map is, "" otherwise);
``backlog`` is ``{"queued": frames waiting behind this batch, "lag_s": seconds since the oldest
frame not yet shown arrived, "bound": the operator queue's frame bound}`` (``hello`` has one too).

Reconnecting (a page's side): ``hello`` gives ``next_seq`` (the first batch this connection will
get) and ``stored_seq`` (batches up to it are in the Tiled table, column ``batch``); the batches
a client lacks below ``next_seq`` are read from the table. After an operator crash and a resumed
session (``LiveConfig.resume``), ``next_seq`` may be at or below batches the client holds: those
were sent but never stored, and their frames come again under new numbers, so a client keys its
points by frame ``index`` and forgets batch numbers from ``next_seq`` on (``bench/soak.py``'s
client does this).
"""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
from arroyopy.schemas import Message

from core.data.store import clean_metadata

MAX_FRAME_BYTES = 1 << 30  # a 1 GiB frame is a broken header, not a detector
TWO_TIME = "two-time"  # metadata["kind"] of a frame that is a two-time correlation map


@dataclass
class Frame(Message):
    """One raw detector frame, as a listener received it."""

    index: int  # the producer's frame number: what the map colours by and the table is keyed on
    source: str  # where it came from (file path, ZMQ endpoint, Tiled node + position)
    array: np.ndarray  # (H, W) or (H, W, C), the detector's own dtype
    metadata: dict = field(default_factory=dict)
    received: float = field(default_factory=time.time)  # epoch seconds, for latency


@dataclass
class FrameError(Message):
    """A frame that could not be used; it is reported, stored and skipped."""

    index: int | None  # None when not even the header could be read
    source: str
    reason: str
    received: float = field(default_factory=time.time)


@dataclass
class StreamEnd(Message):
    """The producer says it is done (``sent`` frames in all, when it knows)."""

    source: str
    sent: int | None = None


@dataclass
class FrameBatch(Message):
    """The frames (and errors) the operator took off its queue together."""

    items: list[Frame | FrameError]


@dataclass
class ResultBatch(Message):
    """What one batch became: one row per image (a frame cut into patches gives several)."""

    seq: int  # batch number in the session, from 0, with no holes
    index: np.ndarray  # (n,) int64 frame index
    patch: np.ndarray  # (n,) int32, -1 without patches
    row: np.ndarray  # (n,) int64 row of each image in the session's images, numbered by the operator
    source: list[str]
    images: np.ndarray  # (n, [C,] S, S) float32 preprocessed images, as the model saw them
    coords: np.ndarray  # (n, 2|3) float32 map coordinates
    cluster: np.ndarray  # (n,) int32, -1 = noise
    non_equilibrium: np.ndarray  # (n,) float64, of the frame when it is a two-time map, else NaN
    received: np.ndarray  # (n,) float64 epoch seconds the frame arrived
    processed: float  # epoch seconds the batch was done
    timings: dict[str, float]  # milliseconds per stage, for this batch
    errors: list[FrameError] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # the operator's counters after this batch
    noise_floor: np.ndarray | None = None  # (n,) float64 floor of non_equilibrium; None: all NaN
    ring: list[str] | None = None  # (n,) the ring of a two-time map ("q 0.1–0.2 nm⁻¹"); None: ""
    backlog: dict = field(default_factory=dict)  # {"queued", "lag_s", "bound"} when published

    def floors(self) -> np.ndarray:
        """``noise_floor``, NaN-filled when the batch has none."""
        return np.full(len(self), np.nan) if self.noise_floor is None else self.noise_floor

    def rings(self) -> list[str]:
        """``ring``, empty strings when the batch has none."""
        return [""] * len(self) if self.ring is None else self.ring

    def __len__(self) -> int:
        return len(self.index)


# -- ZMQ ------------------------------------------------------------------------------------
def frame_to_parts(index: int, array: np.ndarray, source: str, metadata: dict | None = None) -> list[bytes]:
    """A frame as the two ZMQ message parts ``[header, payload]``."""
    array = np.ascontiguousarray(array)
    header = {
        "index": int(index), "source": source, "dtype": array.dtype.str,
        "shape": list(array.shape), "metadata": clean_metadata(metadata or {}),
    }
    return [json.dumps(header).encode(), array.tobytes()]


def end_parts(sent: int) -> list[bytes]:
    return [json.dumps({"type": "end", "sent": int(sent)}).encode()]


def frame_from_parts(parts: list[bytes], endpoint: str) -> Frame | FrameError | StreamEnd:
    """Decode a ZMQ message; anything malformed becomes a :class:`FrameError`, never an exception."""
    try:
        header = json.loads(parts[0])
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        return FrameError(None, endpoint, f"unreadable header: {exc}")
    if header.get("type") == "end":
        return StreamEnd(endpoint, header.get("sent"))
    index = header.get("index")
    source = str(header.get("source") or endpoint)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return FrameError(None, source, f"header index={index!r} must be an integer >= 0")
    try:
        dtype = np.dtype(header["dtype"])
        shape = tuple(int(n) for n in header["shape"])
        if dtype.kind not in "biuf":
            raise ValueError(f"dtype {dtype} is not numeric")
        size = math.prod(shape) * dtype.itemsize
        if not 0 < size <= MAX_FRAME_BYTES or min(shape, default=0) < 1:
            raise ValueError(f"shape {shape} is empty or too large")
        if len(parts) != 2 or len(parts[1]) != size:
            got = len(parts[1]) if len(parts) == 2 else f"{len(parts)} parts"
            raise ValueError(f"payload of {got} bytes for shape {shape} {dtype} ({size} bytes)")
        array = np.frombuffer(parts[1], dtype=dtype).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        return FrameError(index, source, f"malformed frame: {exc}")
    metadata = header.get("metadata")
    return Frame(index, source, array, metadata if isinstance(metadata, dict) else {})


# -- websocket ------------------------------------------------------------------------------
_WIRE_DTYPES = {"f4": np.float32, "f8": np.float64, "i4": np.int32}


def typed_array(values: np.ndarray, dtype: str) -> dict:
    """``{"dtype", "bdata", "shape"}``: little-endian bytes in base64."""
    array = np.ascontiguousarray(values, dtype=np.dtype(_WIRE_DTYPES[dtype]).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode("ascii"),
            "shape": list(array.shape)}


def from_typed_array(spec: dict) -> np.ndarray:
    dtype = np.dtype(_WIRE_DTYPES[spec["dtype"]]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).reshape(spec["shape"])


def error_dict(error: FrameError) -> dict:
    return {"index": error.index, "source": error.source, "reason": error.reason}


def encode_batch(batch: ResultBatch, *, session: str, stored_seq: int) -> str:
    """A result batch as one websocket text message (see the module docstring)."""
    return json.dumps({
        "type": "batch", "session": session, "seq": batch.seq, "n": len(batch),
        "index": typed_array(batch.index, "i4"),  # JS has no int64 array short of BigInt
        "patch": typed_array(batch.patch, "i4"),
        "row": typed_array(batch.row, "i4"),
        "coords": typed_array(batch.coords, "f4"),
        "cluster": typed_array(batch.cluster, "i4"),
        "non_equilibrium": typed_array(batch.non_equilibrium, "f4"),
        "noise_floor": typed_array(batch.floors(), "f4"),
        "ring": batch.rings(),
        "received": typed_array(batch.received, "f8"),
        "source": batch.source,
        "processed": batch.processed,
        "timings_ms": batch.timings,
        "errors": [error_dict(e) for e in batch.errors],
        "stored_seq": stored_seq,  # batches up to this one are in the Tiled table
        "stats": batch.stats,
        "backlog": batch.backlog,  # frames still queued behind this batch, seconds of lag, bound
    })


def decode_message(text: str | bytes) -> dict:
    """Parse a websocket message, turning typed arrays back into numpy (tests, Python clients)."""
    message = json.loads(text)
    for key, value in message.items():
        if isinstance(value, dict) and "bdata" in value:
            message[key] = from_typed_array(value)
    return message
