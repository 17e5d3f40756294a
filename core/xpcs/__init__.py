"""XPCS: |q| rings, two-time correlation maps per ring, the non-equilibrium measure and its noise floor."""
