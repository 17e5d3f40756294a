"""Data in and out: reading detector and image files, preprocessing, ingest, and the Tiled
store every result is written to and read from."""
