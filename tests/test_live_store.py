"""A live session's stored images: rows written where the operator numbered them, found by ``row``."""

import numpy as np
import pytest

from core.live.session import IMAGE_CHUNK_BYTES, LATER_COLUMNS, LiveSession, points_schema


def images(values: list[float]) -> np.ndarray:
    """(n, 2, 2) float32 images, image k constant at values[k]: easy to tell apart by hand."""
    return np.repeat(np.asarray(values, np.float32), 4).reshape(-1, 2, 2)


def points(rows: list[int], clusters: list[int]) -> dict:
    n = len(rows)
    return {"index": [10 + r for r in rows], "patch": [-1] * n, "source": ["sim"] * n, "batch": [0] * n,
            "row": rows, "x": np.zeros(n), "y": np.zeros(n), "cluster": clusters,
            "non_equilibrium": [np.nan] * n, "received": np.zeros(n), "processed": np.zeros(n)}


def test_images_land_on_their_rows_whatever_order_the_table_has(store):
    """Rows 0-1, then 2-4, then 2-4 again (a retried write): each row holds its own image; the
    table, appended in another order, finds each point's image through ``row``."""
    session = LiveSession.create(store, n_components=2, metadata={})
    session.put_images(np.array([0, 1]), images([0.5, 1.5]))
    session.put_images(np.array([2, 3, 4]), images([2.5, 3.5, 4.5]))
    session.put_images(np.array([2, 3, 4]), images([2.5, 3.5, 4.5]))  # rewrites, adds nothing
    session.append_points(points([3, 0, 4], [1, 0, -1]))
    session.append_points(points([2, 1], [1, 0]))

    stored = session.images
    per_chunk = IMAGE_CHUNK_BYTES // (4 * 2 * 2)  # 65,536 images of 2 x 2 float32 per MiB
    assert stored.shape == (per_chunk, 2, 2) and stored.chunks[0] == (per_chunk,)
    assert np.asarray(stored[0:6])[:, 0, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 0.0]  # row 5: unwritten
    table = session.points()
    by_table = np.asarray(stored[0:5])[table["row"].to_numpy()][:, 1, 1]
    assert table["index"].tolist() == [13, 10, 14, 12, 11]
    assert by_table.tolist() == [3.5, 0.5, 4.5, 2.5, 1.5]  # image value = index - 9.5, by hand


def test_reopened_session_extends_its_images_and_refuses_bad_rows(store):
    """A second writer (the session opened again) grows the same array; rows must be consecutive."""
    created = LiveSession.create(store, n_components=2, metadata={})
    created.put_images(np.array([0]), images([7.0]))
    again = LiveSession.open(store, created.id)
    again.put_images(np.array([1, 2]), images([8.0, 9.0]))
    assert np.asarray(again.images[0:3])[:, 0, 0].tolist() == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="consecutive"):
        again.put_images(np.array([4, 6]), images([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        again.put_images(np.array([3]), np.zeros((1, 3, 3), np.float32))


def test_points_of_a_session_without_images_read_with_defaults(store):
    """A session stored before rows and the XPCS measure existed reads with row -1 and NaN."""
    import uuid

    import pyarrow as pa

    schema = pa.schema([f for f in points_schema(2) if f.name not in LATER_COLUMNS])
    node = store.root.create_container(f"old-{uuid.uuid4().hex[:6]}")
    node.create_appendable_table(schema, key="points").append_partition(
        0, pa.table({name: points([0], [2])[name] for name in schema.names}, schema=schema))
    table = LiveSession(store, "old", node).points()
    assert table["row"].tolist() == [-1] and np.isnan(table["non_equilibrium"]).all()
    assert table["cluster"].tolist() == [2]


def test_a_resumed_older_session_appends_without_the_columns_it_lacks(store):
    """An errors table stored before errors had ``batch`` (and a points table before ``row`` and
    the XPCS columns): a resumed session appends to them, the missing columns read as defaults."""
    import uuid

    import pyarrow as pa

    from core.live.session import ERRORS_SCHEMA

    node = store.root.create_container(f"old-{uuid.uuid4().hex[:6]}", metadata={"n_components": 2})
    old_errors = pa.schema([f for f in ERRORS_SCHEMA if f.name != "batch"])
    node.create_appendable_table(old_errors, key="errors")
    old_points = pa.schema([f for f in points_schema(2) if f.name not in LATER_COLUMNS])
    node.create_appendable_table(old_points, key="points")
    session = LiveSession(store, "old", node)
    session.append_errors({"index": [7], "source": ["sim"], "reason": ["NaN in frame"],
                           "received": [1.5], "batch": [3]})
    session.append_points(points([5], [1]))
    errors, table = session.errors(), session.points()
    assert errors["index"].tolist() == [7] and errors["batch"].tolist() == [-1]
    assert table["index"].tolist() == [15] and table["row"].tolist() == [-1]
    assert table["cluster"].tolist() == [1] and np.isnan(table["non_equilibrium"]).all()
