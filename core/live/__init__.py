"""Live mode's stored side: the appendable Tiled table and frames of a live session."""
