"""XPCS: two-time correlation maps and their non-equilibrium measure."""
