"""The Tiled store: round trips, incremental datasets, hygiene of metadata."""

import numpy as np
import pandas as pd
import pytest

from core.data.store import Store, StoreError, StoreUnavailable, clean_metadata
from tests.http_recorder import recorder  # noqa: F401  a fixture
from core.data.results.datasets import dataset_writer, iter_images, read_images


def test_put_and_read_back_arrays_tables_metadata(store, rng):
    """Arrays, tables and metadata written with put come back unchanged."""
    mu = rng.normal(size=(7, 4)).astype("float32")
    table = pd.DataFrame({"index": range(3), "source": ["a", "b", "c"]})
    id = store.put("latents", arrays={"mu": mu}, tables={"t": table}, metadata={"model_id": "m-1", "d": np.int64(4)})
    assert np.array_equal(store.array("latents", id, "mu"), mu)
    assert store.table("latents", id, "t")["source"].tolist() == ["a", "b", "c"]
    meta = store.metadata("latents", id)
    assert meta["model_id"] == "m-1" and meta["d"] == 4 and meta["complete"] is True
    assert [item["id"] for item in store.list("latents")] == [id]


def test_dataset_writer_appends_batches_and_chunks(store, rng):
    """Batches appended one after another read back as one array in order."""
    batches = [rng.random((5, 8, 8), dtype="float32") for _ in range(3)]
    writer = dataset_writer(store, metadata={"preprocess": {"size": 8}})
    for batch in batches:
        writer.append(batch)
    id = writer.finish(pd.DataFrame({"index": range(15)}))
    assert np.array_equal(read_images(store, id), np.concatenate(batches))
    starts = [start for start, _ in iter_images(store, id, batch_size=4)]
    assert starts == [0, 4, 8, 12]
    meta = store.metadata("datasets", id)
    assert meta["n_frames"] == 15 and meta["frame_shape"] == [8, 8] and meta["complete"]


def test_dataset_writer_refuses_mismatched_frames(store, rng):
    """A batch of another frame size is refused with both shapes in the message."""
    writer = dataset_writer(store, metadata={})
    writer.append(rng.random((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(6, 6\).*\(8, 8\)"):
        writer.append(rng.random((2, 6, 6)))


def test_node_writer_grows_arrays_and_is_complete_only_when_finished(store, rng):
    """Two appends make one array in order; the node reads as incomplete until finish()."""
    writer = store.writer("variations", metadata={"gamma": 1.0})
    a, b = rng.random((3, 2, 4, 4)).astype(np.float32), rng.random((5, 2, 4, 4)).astype(np.float32)
    writer.append("images", a)
    writer.append("images", b)
    writer.write_table("samples", pd.DataFrame({"kept": [True, False]}))
    assert store.metadata("variations", writer.id)["complete"] is False
    with pytest.raises(ValueError, match="do not match"):
        writer.append("images", np.zeros((1, 2, 5, 5), np.float32))
    writer.finish(n_kept=8)
    meta = store.metadata("variations", writer.id)
    assert meta["complete"] is True and meta["n_kept"] == 8 and meta["gamma"] == 1.0
    np.testing.assert_array_equal(store.array("variations", writer.id, "images"), np.concatenate([a, b]))


def test_metadata_drops_secrets_and_non_finite():
    """Keys that look like secrets never reach Tiled; NaN becomes None."""
    cleaned = clean_metadata({"api_key": "x", "nested": {"token": 1, "ok": float("nan")}, "n": np.float32(2)})
    assert cleaned == {"nested": {"ok": None}, "n": 2.0}


def test_unknown_node_lists_what_exists(store):
    """Asking for a missing id says which ids exist."""
    store.put("models", arrays={"weights": np.zeros(3, "float32")}, id="m-known")
    with pytest.raises(StoreError, match="m-known"):
        store.metadata("models", "m-missing")


def test_dead_server_gives_actionable_message():
    """A Tiled URI nobody listens on raises StoreUnavailable naming the fix."""
    with pytest.raises(StoreUnavailable, match="MORPHOSPACE_TILED_URI"):
        Store.from_uri("http://127.0.0.1:9/api/v1", api_key="x")


def test_writes_need_the_api_key(tiled_server):
    """Without the API key the server refuses access."""
    with pytest.raises(StoreUnavailable, match=r"\(RuntimeError: This server requires API key authentication\.\)"):
        Store.from_uri(tiled_server.uri.split("?")[0])


def test_a_host_that_is_not_tiled_gives_one_line_without_its_reply(recorder):
    """MORPHOSPACE_TILED_URI pointing at another web server: one line, its body not quoted."""
    with pytest.raises(StoreUnavailable) as info:
        Store.from_uri(recorder.uri, api_key="x")
    assert "\n" not in str(info.value) and "BODY-7d1e" not in str(info.value)
    assert "did not answer as a Tiled server does" in str(info.value)


@pytest.mark.parametrize("bad", ["../../secret/datasets/ds-1", "..", "ds-1/images", "", "ds 1", "a" * 129])
def test_ids_and_names_that_could_leave_the_project_are_refused(store, rng, bad):
    """A `..`, a `/` or an odd id never reaches Tiled: reads and writes refuse it in one line."""
    other = Store.from_client(store.root, project=store.project + "x")
    secret = other.put("datasets", arrays={"images": rng.random((2, 4, 4))})
    crafted = bad.replace("ds-1", secret) if "ds-1" in bad else bad
    mine = store.put("datasets", arrays={"images": np.zeros((1, 4, 4))})
    for read in (lambda: read_images(store, crafted), lambda: store.metadata("datasets", crafted),
                 lambda: store.exists("datasets", crafted), lambda: store.writer("datasets", metadata={}, id=crafted or "-"),
                 lambda: store.array("datasets", mine, crafted)):
        with pytest.raises(ValueError, match="is not a valid key"):
            read()


def test_flow_params_refuse_a_crafted_id_before_any_run():
    """The flows' parameter models use the store's pattern: `..` in an id fails validation."""
    from pydantic import ValidationError

    from flows.params import EncodeParams, TrainParams

    assert TrainParams(dataset_id="ds-20261122T021501042-3f9a1c").dataset_id.startswith("ds-")
    with pytest.raises(ValidationError, match="dataset_id"):
        TrainParams(dataset_id="../../secret/datasets/ds-20261122T021501042-3f9a1c")
    with pytest.raises(ValidationError, match="model_id"):
        EncodeParams(dataset_id="ds-1", model_id="m-1/weights")


def test_incomplete_results_are_hidden_and_refused_as_inputs(store, rng):
    """A dataset whose writing stopped (never finished) is not listed and cannot be read as input."""
    writer = dataset_writer(store, metadata={"name": "stopped"})
    writer.append(rng.random((3, 8, 8)))
    writer.abandon("MemoryError while reading big.npy")
    assert store.list("datasets") == []
    assert [i["id"] for i in store.list("datasets", incomplete=True)] == [writer.id]
    for read in (lambda: read_images(store, writer.id), lambda: next(iter_images(store, writer.id, 2))):
        with pytest.raises(StoreError, match=r"is incomplete.*MemoryError while reading big\.npy.*again"):
            read()


def test_every_kind_has_an_id_prefix_of_its_own():
    """Every kind of Kind has an id prefix, and no two kinds share one."""
    from core.data.store import KINDS, new_id

    prefixes = {new_id(kind).split("-")[0] for kind in KINDS}
    assert "live" in KINDS and len(prefixes) == len(KINDS), prefixes
