"""What reading stored results needs from a store, as a protocol: the page and the analyses
type their ``store`` with it, so they run on ``core.data.store.Store`` or any object that reads
the same way (a bench's in-memory store, a test double)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class ResultStore(Protocol):
    """Project-scoped reads of stored results (``kind`` is one of ``core.data.store.KINDS``).

    Generic access only: what a kind holds is read through its owner in ``core.data.results``,
    which takes any store of this shape."""

    project: str

    def list(self, kind: str, *, incomplete: bool = False) -> list[dict]: ...
    def count_complete(self, kind: str) -> int: ...
    def metadata(self, kind: str, id: str) -> dict: ...
    def node(self, kind: str, id: str) -> Any: ...
    def array_names(self, kind: str, id: str) -> list[str]: ...
    def array(self, kind: str, id: str, name: str, index: Any = ...) -> np.ndarray: ...
    def table(self, kind: str, id: str, name: str) -> pd.DataFrame: ...
