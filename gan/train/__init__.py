"""Train state, the sharded train step, the loop and checkpoints."""
