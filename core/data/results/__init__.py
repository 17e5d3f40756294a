"""One owner per kind of stored result: the module that writes it and reads it back typed.

datasets, latents, projections, clusterings, variations, calibrations, xpcs_simulations,
xpcs_maps and synthesis_evaluations live here; models are owned by core.models.checkpoint, live sessions by
core.live.session. Each owner names its arrays, tables and metadata keys once; core.data.store
is the generic Tiled access they share.
"""
