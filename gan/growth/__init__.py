"""Progressive growing, shared by the families that grow (ProGAN, StyleGAN v1): the
schedule in images shown, the fade-in of the reals, and the family half that turns a
schedule into phases (family.py)."""
