"""ProGAN (Karras et al. 2018): config, networks, growth schedule, state, train step.

The family object, FAMILY, is in family.py.
"""
