"""The download stage's library: fetch the needed time range of each video, verify it, ledger it.

- `errors`: permanent vs transient classification of failure messages (pure functions);
- `ytdlp`: one section download through the yt-dlp Python API (exact cuts, ffmpeg found);
- `local`: the same from the user's own files (ffmpeg cut);
- `verify`: probe, decode and length checks, sha256;
- `ledger`: per-video records and the Parquet ledger (`read_ledger`, `ok_videos`);
- `ratelimit`: minimum seconds between request starts, shared by all local workers;
- `job`: `run_job(job)`, the per-video function the stage maps.
"""
