"""Repurpose-10K split files: schema, validation, windows, per-second labels and targets."""
