"""GANs in JAX/Flax: BigGAN and ProGAN as families of one training loop (docs/architecture.md)."""
