"""One owner per kind of stored result: the module that writes it and reads it back typed.

latents, projections, clusterings, variations, calibrations live here; datasets are owned by
core.data.store (DatasetWriter, images, frames), models by core.models.checkpoint, live
sessions by core.live.session. Array, table and metadata names are constants of their owner.
"""
