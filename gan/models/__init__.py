"""BigGAN modules: generator, discriminator and their layers."""
