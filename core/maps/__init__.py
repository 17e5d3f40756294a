"""Latent maps: encoding images, projecting latents (PCA/UMAP), clustering (HDBSCAN), the
quality figures of a map, and statistics of a selection."""
