"""The per-video floor: `asr` and `features` never import each other, and the cache keys the
shared engine computes are the ones earlier runs stored (a change would recompute every video).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (top-level and function-local) or names in a registry string."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("repurpose.") and " " not in node.value:
            found.add(node.value.split(":")[0])
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("asr", ("repurpose.features",)),
    ("features", ("repurpose.asr",)),
    ("pervideo", ("repurpose.features", "repurpose.asr")),
])
def test_packages_keep_to_their_floor(package: str, forbidden: tuple[str, ...]) -> None:
    bad = []
    for path in sorted((ROOT / "repurpose" / package).glob("*.py")):
        for name in sorted(imported_modules(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_cache_keys_are_the_ones_stored_before() -> None:
    # computed by the code before the shared engine existed (same inputs): a different key
    # means every cached video is recomputed and every shard rewritten
    from repurpose.asr.backends import get_asr_backend
    from repurpose.features.config import ModalityConfig
    from repurpose.features.extract import video_key
    from repurpose.pervideo.inputs import VideoInput
    from repurpose.pervideo.results import result_key

    v = VideoInput("abcdefghijk", "/nonexistent.mp4", "0" * 64, 12.0, 90.0, True)
    flat = {"device": "auto", "batch_size": 8, "dtype": "float16", "n_shards": 1}
    audio = ModalityConfig.from_section("audio", {**flat, "backend": "logmel", "logmel": {}},
                                        "extract.audio")
    assert video_key(v, audio, audio.backend.weights_identity()) == \
        "bf5da3d38e6db7b4d6cd6a954a419afc"
    visual = ModalityConfig.from_section(
        "visual", {**flat, "backend": "efficientnet-lite0", "efficientnet-lite0": {}},
        "extract.visual")
    assert video_key(v, visual, "sha256:x") == "78586065b2217e9bdc29e009a583219b"
    asr = get_asr_backend("faster-whisper", {"model": "package"}, batch_size=8)
    assert result_key(modality="transcript", backend=asr.key, params=asr.params,
                      weights="sha256:w", sha256=v.sha256, source_offset=v.source_offset) == \
        "b7feec96e75c380c1cf1577e2ae01139"
    text = ModalityConfig.from_section("text", {**flat, "backend": "minilm", "minilm": {}},
                                       "embed_text")
    assert result_key(modality="text", backend=text.backend.key, params=text.backend.params,
                      weights="sha256:m", dtype=text.dtype, transcript="tk",
                      rows=[12, 102]) == "8b0c4a451b2c59fb4b095f3116fcaa73"


def test_engine_reuses_failures_unless_retried_and_never_caches_a_missing_file(
        tmp_path: Path) -> None:
    from repurpose.features.config import ModalityConfig
    from repurpose.features.extract import run_extract
    from repurpose.pervideo.inputs import load_videos
    from repurpose.runner import serial_map
    from tests.synthetic_media import pattern_video, write_test_ledger

    folder = tmp_path / "videos"
    folder.mkdir()
    pattern_video(folder / "goodvideo01.mp4", 3, ())
    (folder / "brokenvid01.mp4").write_bytes(os.urandom(2000))
    pattern_video(folder / "missingfil1.mp4", 3, ())
    write_test_ledger(folder, {"goodvideo01": {}, "brokenvid01": {}, "missingfil1": {}})
    videos = load_videos(folder / "ledger.parquet", folder)
    (folder / "missingfil1.mp4").unlink()  # listed in the ledger, gone from disk
    cfg = ModalityConfig.from_section(
        "audio", {"backend": "logmel", "device": "cpu", "batch_size": 8, "dtype": "float32",
                  "n_shards": 1, "logmel": {}}, "extract.audio")

    def run(retry: bool = False):  # noqa: ANN202
        return run_extract(cfg, videos, tmp_path / "out", tmp_path / "cache", serial_map,
                           retry_failed=retry)

    first = run()
    assert (first.computed, first.reused) == (2, 0)  # the missing file is neither
    assert first.failed == {"undecodable": 1, "missing_file": 1}
    again = run()
    assert (again.computed, again.reused) == (0, 2)  # the media failure is a cached result
    retried = run(retry=True)
    assert (retried.computed, retried.reused) == (1, 1)  # only the failure is recomputed
    assert retried.failed == first.failed
