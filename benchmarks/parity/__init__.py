"""Side-by-side checks of our BigGAN against ajbrock/BigGAN-PyTorch (needs torch; not in the suite)."""
