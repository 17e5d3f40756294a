"""Live mode on arroyopy: listeners -> :class:`~streaming.operator.LiveOperator` -> publishers.

``messages`` (what travels, and its ZMQ and websocket encodings), ``listeners`` (ZMQ, folder,
Tiled), ``operator`` (preprocess, encode, project, cluster, in batches), ``publishers``
(websocket, Tiled table), ``pipeline`` (all of it in one asyncio program), ``simulator``
(replay real frames). The arroyopy 0.2.2 rough edges worked around are listed in the
docstrings of ``listeners`` and ``operator``.
"""
