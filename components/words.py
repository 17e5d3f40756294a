"""Counts as a person writes them ("1 frame", "1,250 samples"), and stored results named in a line."""

from __future__ import annotations


def noun_for(n: int, noun: str, nouns: str | None = None) -> str:
    """The noun for ``n`` things: singular for exactly one; ``nouns`` when not the noun plus "s"."""
    return noun if n == 1 else nouns or noun + "s"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and its noun: ``plural(1, "frame") == "1 frame"``, ``plural(1250, "frame") == "1,250 frames"``."""
    return f"{n:,} {noun_for(n, noun, nouns)}"


def describe(kind: str, item: dict) -> str:
    """One line naming a result by what made it."""
    p = item.get("params", {})
    if kind == "datasets":
        n = item.get("n_frames")
        return f"{item.get('name') or item['id']} ({plural(n, 'frame') if n is not None else '? frames'})"
    if kind == "models" and item.get("family") == "xpcs":
        return f"XPCS {item.get('name') or 'regressor'} · {item['id']}"
    if kind in ("xpcs_simulations", "xpcs_maps"):
        return f"{item.get('name') or kind} · {item['id']}"
    if kind == "models":
        config = item.get("config", {})
        return f"{item.get('family', 'vae').upper()} d={config.get('latent_dim')} · {item['id']}"
    if kind == "projections":
        dims = p.get("n_components", "?")
        extra = f", k={p.get('n_neighbors')}, min_dist={p.get('min_dist')}" if p.get("method") == "umap" else ""
        return f"{str(p.get('method', '?')).upper()} {dims}-D{extra} · {item['id']}"
    n = item.get("n_clusters")
    return f"{plural(n, 'cluster') if n is not None else '? clusters'}, min size {p.get('min_cluster_size')} · {item['id']}"
