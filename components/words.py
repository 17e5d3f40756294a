"""Counts as a person writes them: "1 frame", "2 frames", "1,250 samples"."""

from __future__ import annotations


def noun_for(n: int, noun: str, nouns: str | None = None) -> str:
    """The noun for ``n`` things: singular for exactly one; ``nouns`` when not the noun plus "s"."""
    return noun if n == 1 else nouns or noun + "s"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and its noun: ``plural(1, "frame") == "1 frame"``, ``plural(1250, "frame") == "1,250 frames"``."""
    return f"{n:,} {noun_for(n, noun, nouns)}"
