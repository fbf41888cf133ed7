"""The feature-level model-quality benchmark: planted-signal sets and the arch comparison."""
