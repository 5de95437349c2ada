"""BigGAN (Brock et al. 2018): config, networks, state, train step, sample grids.

The family object, FAMILY, is in family.py.
"""
