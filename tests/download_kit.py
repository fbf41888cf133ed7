"""Shared by the download-stage tests: a `download` params file pointing at a loopback
server, a videos table, and the stage's arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from repurpose.splits.tables import VideoRanges, write_videos_table
from tests.loopback import LoopbackServer

HULL = (5.0, 12.0)  # seconds of the 20 s source videos every test asks for


def write_params(path: Path, server: LoopbackServer, **overrides: object) -> Path:
    values: dict[str, object] = {
        "source": "url",
        "url_template": f'"{server.base_url}/{{youtube_id}}.mp4"',
        "format": '"bv*[height<=360]+ba/b[height<=360]/b"',
        "retries": 2,
        "backoff_base": 0.05,
        "backoff_max": 3,
        "timeout": 1,
        "rate_limit_seconds": 0,
        "cookies_file": "null",
        "max_failed_fraction": 0.6,
        "deadline": 120,
        "cut": "copy",
    }
    values.update(overrides)
    body = "".join(f"  {k}: {v}\n" for k, v in values.items())
    path.write_text(f"download:\n{body}", encoding="utf-8")
    return path


def write_videos(path: Path, ids: list[str], hull: tuple[float, float] = HULL) -> Path:
    write_videos_table(path, [VideoRanges(i, (hull,), ("val",), 1) for i in ids])
    return path


def args_for(tmp: Path, **extra: object) -> argparse.Namespace:
    values = {
        "params": str(tmp / "params.yaml"),
        "videos": str(tmp / "videos.parquet"),
        "out": str(tmp / "out"),
        "local_dir": None,
        "retry_failed": False,
    }
    values.update(extra)
    return argparse.Namespace(**values)
