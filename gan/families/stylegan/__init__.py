"""StyleGAN (v1, Karras et al. 2018) and StyleGAN2 (Karras et al. 2020): two families that
share the mapping network, the style arithmetic, the grids and the ops."""
