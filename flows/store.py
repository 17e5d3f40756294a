"""The store and the retryable Tiled I/O steps that flows share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.settings import get_settings
from core.data.store import Store, StoreError, StoreUnavailable

T = TypeVar("T")


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what a second try may cure (Tiled unreachable, a dropped connection), not a refusal
    (an incomplete input, an unknown id, a bad key): those fail at once with their message."""
    try:
        state.result()
    except StoreUnavailable:
        return True
    except (StoreError, ValueError, KeyError):
        return False
    except Exception:
        return True
    return True


TILED_RETRIES = dict(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE,
                     retry_condition_fn=_worth_retrying)


@functools.cache
def get_store() -> Store:
    return Store.from_settings(get_settings())


def provenance() -> dict[str, Any]:
    """What every stored result records about the run that made it."""
    return {"flow_run_id": str(flow_run.id), "flow_name": flow_run.flow_name}


@task(**TILED_RETRIES)
def load(read: Callable[..., T], *args: Any) -> T:
    """``read(store, *args)`` with retries: ``read`` is a result owner's reader (core.data.results)."""
    return read(get_store(), *args)


@task(**TILED_RETRIES)
def read_metadata(kind: str, id: str) -> dict:
    return get_store().metadata(kind, id)


@task(**TILED_RETRIES)
def save(write: Callable[..., str], *args: Any, metadata: dict[str, Any]) -> str:
    """``write(store, *args, metadata)`` with retries, the run's provenance added to the metadata."""
    return write(get_store(), *args, {**metadata, **provenance()})
