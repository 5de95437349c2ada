"""BigGAN (and ProGAN) in JAX/Flax."""
