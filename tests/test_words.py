"""Counts in the page read as a person writes them."""

from components.words import describe, plural


def test_one_is_singular_and_thousands_are_grouped():
    """1 frame, 0 frames, 1,250 frames; an irregular plural when given."""
    assert [plural(n, "frame") for n in (1, 0, 2, 1250)] == ["1 frame", "0 frames", "2 frames", "1,250 frames"]
    assert plural(1, "analysis", "analyses") == "1 analysis" and plural(3, "analysis", "analyses") == "3 analyses"


def test_sidebar_names_results_with_plurals():
    """A one-frame dataset and a one-cluster map are not "1 frames" or "1 clusters"."""
    assert describe("datasets", {"id": "ds-1", "name": "one", "n_frames": 1}) == "one (1 frame)"
    assert describe("clusterings", {"id": "cl-1", "n_clusters": 1, "params": {"min_cluster_size": 5}}).startswith("1 cluster,")
    assert describe("datasets", {"id": "ds-1"}) == "ds-1 (? frames)"
