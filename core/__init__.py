"""The science and data access of Morphospace, with no Dash and no Prefect: usable from a notebook.

Packages by domain: ``data`` (files, ingest, the Tiled store), ``models`` (VAE, GAN, training),
``maps`` (encode, project, cluster, quality, selection), ``variations``, ``xpcs``, ``live``;
``settings`` is the one configuration object, ``limits`` the parameter bounds every layer shares.
"""
