"""The download stage's library: fetch the needed time range of each video, verify it, ledger it.

- `errors`: permanent vs transient classification of failure messages (pure functions);
- `ytdlp`: one section download through the yt-dlp Python API (stream copy or exact cut);
- `local`: the same from the user's own files;
- `cut`: the ffmpeg cuts (keyframe-aligned stream copy + rebase, exact re-encode), also used
  for `repurpose clip`'s output files;
- `encode`: the exact cut's encoder settings (x264 veryfast + AAC);
- `verify`: probe, decode and length checks, sha256;
- `ledger`: per-video records and the Parquet ledger (`read_ledger`, `ok_videos`);
- `ratelimit`: minimum seconds between request starts, shared by all local workers;
- `retry`: the one retry loop (backoff, Retry-After, rate limit, deadline), also used by
  `repurpose clip`'s URL input;
- `sandbox`: each attempt in a killable child process group;
- `job`: `run_job(job)`, the per-video function the stage maps, and `DownloadConfig`.
"""
