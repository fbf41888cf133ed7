"""Kept for existing importers: transcripts live in `repurpose.pervideo.transcript`."""

from repurpose.pervideo.transcript import TIME_BASE, Segment, Transcript, Word  # noqa: F401
