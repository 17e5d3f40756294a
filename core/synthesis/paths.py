"""A path drawn on the map, as the evenly spaced map coordinates a sampler is asked about.

Plotly's "draw open path" tool hands back an SVG path (``"M1.5,2L3,4L5,4.5"``) in data
coordinates. A hand-drawn path has points bunched where the hand slowed down; resampling by arc
length gives one query every equal step along it, so the sequence reads as a trajectory at a
steady pace (a hypothetical one: the map's axes are not time).
"""

from __future__ import annotations

import re

import numpy as np

STEPS_RANGE = (2, 200)  # images along a path: at least its two ends; each is one decode
_COMMAND = re.compile(r"([MLml])\s*([^MLmlZz]*)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_svg_path(path: str) -> np.ndarray:
    """The vertices (K, 2) of an SVG path made of M/L commands (what Plotly draws).

    Relative commands (m, l) are resolved; a closing ``Z`` is ignored (the path stays open).
    Raises ValueError on curves or on an odd number of coordinates.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"path={path!r} is empty: draw a path on the map first")
    rest = re.sub(r"[MLmlZz\s,\d.eE+-]", "", path)
    if rest:
        raise ValueError(f"path uses {sorted(set(rest))} commands; only straight segments (M, L) are read")
    points: list[tuple[float, float]] = []
    for command, body in _COMMAND.findall(path):
        numbers = [float(v) for v in _NUMBER.findall(body)]
        if not numbers or len(numbers) % 2:
            raise ValueError(f"path command {command!r} has {len(numbers)} numbers; it needs x,y pairs")
        for x, y in zip(numbers[::2], numbers[1::2]):
            if command.islower() and points:
                x, y = points[-1][0] + x, points[-1][1] + y
            points.append((x, y))
    return np.asarray(points, dtype=np.float64)


def resample(vertices: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points (steps, 2) evenly spaced by arc length along a polyline, both ends included.

    Parameters
    ----------
    vertices : array of shape (K, 2), K >= 2, of positive total length
    steps : int in STEPS_RANGE

    Examples
    --------
    >>> resample(np.array([[0, 0], [2, 0], [2, 2]]), 5).tolist()
    [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0]]
    """
    lo, hi = STEPS_RANGE
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and lo <= steps <= hi):
        raise ValueError(f"steps={steps!r} must be a whole number between {lo} and {hi}")
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 2:
        raise ValueError(f"a path needs at least two (x, y) points, got shape {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("the path has NaN or infinite coordinates")
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(vertices, axis=0).T))])  # (K,)
    if along[-1] <= 0:
        raise ValueError("the path has no length: drag across the map to draw one")
    targets = np.linspace(0.0, along[-1], int(steps))
    return np.column_stack([np.interp(targets, along, vertices[:, 0]),
                            np.interp(targets, along, vertices[:, 1])])


def path_length(vertices: np.ndarray) -> float:
    """Total length of a polyline (K, 2), in map units."""
    vertices = np.asarray(vertices, dtype=np.float64)
    return float(np.hypot(*np.diff(vertices, axis=0).T).sum()) if len(vertices) > 1 else 0.0
