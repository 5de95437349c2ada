"""Evaluation: feature networks, metrics, and the protocol that runs them."""
