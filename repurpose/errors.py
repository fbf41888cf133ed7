"""Errors a user can act on: the CLI prints them as one clear message and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration; the message names the file, entry and field."""


class TransientError(Exception):
    """A per-item failure worth retrying later (network hiccup, rate limit, truncated file)."""


class PermanentError(Exception):
    """A per-item failure that retrying cannot fix (deleted video, unsupported file)."""
