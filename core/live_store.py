"""Live sessions in Tiled: appendable tables that grow as frames are placed on the map.

Layout: ``/<project>/live/<session>`` is a container whose metadata records what produced the
points (projection, clustering, model, dataset, preprocessing), with two appendable tables:

    points   index, patch, source, batch, x, y[, z], cluster, received, processed
    errors   index, source, reason, received     (created with the first error)

``index`` is the producer's frame number, ``batch`` the websocket batch number, so a browser
that missed batches ``a..b`` reads the rows with ``a <= batch <= b``. Times are epoch seconds.

Appendable tables live in the server's SQL storage (``create_appendable_table``) and grow with
``append_partition``; a ``write_table`` (Parquet) node cannot grow. Rows go up as a
``pyarrow.Table`` with the declared schema: a pandas frame would be sent with its index as an
extra ``__index_level_0__`` column, which the server refuses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from core.store import Store, StoreError, clean_metadata, new_id

LIVE = "live"
AXES = ("x", "y", "z")


def new_session_id() -> str:
    """Sortable and unique, like every stored id: ``live-20261122T021501042-3f9a1c``."""
    return new_id(LIVE)


def points_schema(n_components: int) -> pa.Schema:
    return pa.schema(
        [("index", pa.int64()), ("patch", pa.int32()), ("source", pa.string()),
         ("batch", pa.int64())]
        + [(axis, pa.float32()) for axis in AXES[:n_components]]
        + [("cluster", pa.int32()), ("received", pa.float64()), ("processed", pa.float64())]
    )


ERRORS_SCHEMA = pa.schema([("index", pa.int64()), ("source", pa.string()),
                           ("reason", pa.string()), ("received", pa.float64())])


@dataclass
class LiveSession:
    """One live session's node; build with :meth:`create` or :meth:`open`."""

    store: Store
    id: str
    node: Any  # tiled container client
    _tables: dict[str, Any] = field(default_factory=dict, repr=False)  # table clients, by name

    @classmethod
    def create(cls, store: Store, *, n_components: int, metadata: Mapping[str, Any],
               id: str | None = None) -> LiveSession:
        if n_components not in (2, 3):
            raise ValueError(f"n_components={n_components!r} must be 2 or 3")
        live = _live_container(store)
        if id is not None and id in live:  # a generated id is unique: no need to ask
            raise StoreError(f"live session {id!r} already exists in project {store.project!r}")
        id = id or new_session_id()
        meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "n_components": n_components, **metadata}
        node = live.create_container(id, metadata=clean_metadata(meta))
        node.create_appendable_table(points_schema(n_components), key="points")
        return cls(store, id, node)  # the errors table is made with the first error

    @classmethod
    def open(cls, store: Store, id: str) -> LiveSession:
        live = _live_container(store)
        if id not in live:
            raise StoreError(
                f"No live session {id!r} in project {store.project!r}. "
                f"Known: {', '.join(list(live)[-5:]) or 'none'}"
            )
        return cls(store, id, live[id])

    @property
    def path(self) -> str:
        return f"/{self.store.project}/{LIVE}/{self.id}"

    @property
    def n_components(self) -> int:
        return int(self.node.metadata["n_components"])

    def append_points(self, rows: Mapping[str, Any]) -> None:
        """Append rows given as columns (the names of :func:`points_schema`)."""
        self._append("points", rows, points_schema(self.n_components))

    def append_errors(self, rows: Mapping[str, Any]) -> None:
        self._append("errors", rows, ERRORS_SCHEMA)

    def _append(self, name: str, rows: Mapping[str, Any], schema: pa.Schema) -> None:
        table = pa.table({col: rows[col] for col in schema.names}, schema=schema)
        if not table.num_rows:
            return
        if name not in self._tables:
            self._tables[name] = (self.node[name] if name in self.node
                                  else self.node.create_appendable_table(schema, key=name))
        self._tables[name].append_partition(0, table)

    def points(self) -> pd.DataFrame:
        return self.node["points"].read()

    def errors(self) -> pd.DataFrame:
        if "errors" not in self.node:
            return ERRORS_SCHEMA.empty_table().to_pandas()
        return self.node["errors"].read()

    def update_metadata(self, **changes: Any) -> None:
        self.node.update_metadata(metadata=clean_metadata(changes))


def list_sessions(store: Store) -> list[dict]:
    """Every live session as ``{"id": ..., **metadata}``, newest first."""
    live = _live_container(store)
    items = [{"id": key, **dict(node.metadata)} for key, node in live.items()]
    return sorted(items, key=lambda item: item["id"], reverse=True)


def _live_container(store: Store) -> Any:
    project = Store._child_container(store.root, store.project, {"morphospace": "project"})
    return Store._child_container(project, LIVE, {})
