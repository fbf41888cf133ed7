"""repurpose: turn long user videos into the short clips a creator would publish."""

__version__ = "0.1.0"
