"""The shared training machinery: the one loop (loop.py), checkpoints, non-finite guard,
preemption, sharding, progress, outputs and the workdir. It imports no GAN family."""
