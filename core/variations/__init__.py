"""Material variations (Dao et al. 2025): Monte Carlo sampling around reference latents,
plausibility filters, descriptors, clusters of variations and the γ calibration."""
