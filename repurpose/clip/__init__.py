"""Repurpose one new video (a local file or an http(s) URL) into clip files a person can publish.

`repurpose clip INPUT --model models --out clips/` runs the trained model on a video that is
not part of any dataset:

1. `source`: a local file is used in place; a URL is downloaded whole through the yt-dlp code
   of the download stage (`download.format`) into `<out>/.work/downloads/`;
2. `features`: transcribe (`transcribe` params), extract visual/audio vectors and embed the
   transcript with exactly the backends and backend params recorded in the model's model.json
   (weights locations come from params.yaml; a different weights identity is an error), cached
   under `<out>/.work/` by the file's sha256 and the backend identity;
3. `predict`: cut the video into windows of at most `window_seconds`, predict and post-process
   each window with the model's `postprocess` params, merge in absolute seconds, rank by score;
4. `boundaries`: each clip's start and end snapped to a sentence or at least out of a word
   (transcript word times), onto a shot cut in the same pause, and onto the frame grid;
5. `export`: one H.264 + AAC mp4 per clip (exact cuts, re-encoded, `+faststart`), optionally
   9:16 around faces / motion (`reframe`) and with captions (`subtitles`: .srt, word-by-word
   highlighted .ass, or burned in with libass), a thumbnail, `clips.json` and the `preview`
   page `index.html`.
"""

from __future__ import annotations
