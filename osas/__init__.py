"""osas: one-shot neural architecture search on JAX/Flax."""
