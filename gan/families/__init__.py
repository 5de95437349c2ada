"""GAN families: one package each (biggan, progan), each declaring a ``FAMILY``.

What a family declares: gan/families/interface.py. How the loop finds one by
``config.model.name``: gan/families/registry.py.
"""
