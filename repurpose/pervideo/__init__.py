"""The floor below `features` and `asr`: what every per-video stage shares.

`inputs` (the downloaded videos and their rows), `transcript` (segments and words), `decode`
(frames at 1 fps, audio seconds), `backend` (the model interface and its per-process cache),
`results` (per-video outcomes, their cache and the status files) and `engine` (the one
"cached or compute, per video, through the mapper" routine). `features` and `asr` import from
here and never from each other.
"""
