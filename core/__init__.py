"""The science and data access of Morphospace, with no Dash and no Prefect: usable from a notebook.

Packages by domain: ``data`` (files, ingest, the Tiled store), ``models`` (VAE, GAN, training),
``maps`` (encode, project, cluster, quality, selection), ``variations``, ``xpcs``, ``live``;
``settings`` is the one configuration object, ``limits`` the parameter bounds every layer shares.
"""

import os

# OpenMP threads that find no free core sleep instead of spinning (libgomp reads this once, when
# torch loads, so it is set here, before any module of ours imports torch). Torch's default
# ACTIVE policy spins at every barrier: on 2 shared cores a flow matching step of the study's
# network took 2–3 s with 2 threads against 0.15–0.23 s with this policy (bench/README.md,
# `synthesis.py`). An OMP_WAIT_POLICY already in the environment is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
