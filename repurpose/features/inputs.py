"""Kept for existing importers: the video inputs live in `repurpose.pervideo.inputs`."""

from repurpose.pervideo.inputs import VideoInput, load_videos, row_range  # noqa: F401
