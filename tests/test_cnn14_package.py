"""Cnn14 comes from the `panns_inference` package (its own `models.Cnn14`), loaded without the
package's import-time `wget`, and gives exactly the embeddings of the copy it replaced.

`tests/fixtures/cnn14_reference_embedding.npy` holds the 2048-d embeddings that the former
hand-written copy (`repurpose/features/cnn14.py`, deleted) produced for the checkpoint and
waveforms built below (numpy's seeded RNG, so they do not depend on torch's RNG), saved in the
official `{'model': state_dict}` layout and read through the real `panns-cnn14` backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "fixtures" / "cnn14_reference_embedding.npy"

CHILD = r"""
import json, sys
import numpy as np, torch
from repurpose.features.backends import get_backend
from repurpose.features.panns import new_cnn14

def numpy_state(model, seed=0):
    rng = np.random.default_rng(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(0)
            continue
        if "spectrogram_extractor" in k or "logmel_extractor" in k:
            sd[k] = v.clone()  # the fixed STFT / mel front end, as in the released file
            continue
        if k.endswith("running_var"):
            a = rng.uniform(0.5, 1.5, v.shape)
        elif k.endswith("running_mean"):
            a = rng.normal(0, 0.1, v.shape)
        elif k.endswith(".weight") and v.ndim == 1:
            a = rng.uniform(0.8, 1.2, v.shape)
        else:
            fan_in = int(np.prod(v.shape[1:])) if v.ndim > 1 else 1
            a = rng.normal(0, 1.0 / np.sqrt(fan_in), v.shape)
        sd[k] = torch.from_numpy(a.astype(np.float32))
    return sd

path, out = sys.argv[1], sys.argv[2]
torch.save({"model": numpy_state(new_cnn14().eval()), "iteration": 0}, path)
backend = get_backend("audio", "panns-cnn14", {"weights": path})
wave = np.random.default_rng(1).normal(0, 0.1, (2, 32000)).astype(np.float32)
np.save(out, backend.embed_audio(wave))
print(json.dumps({"modules": sorted(m for m in sys.modules if m.startswith("panns"))}))
"""


@pytest.mark.slow
def test_package_cnn14_gives_the_reference_embeddings_without_downloading(tmp_path: Path
                                                                          ) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PATH": "/nonexistent"}  # no wget to run
    out = tmp_path / "emb.npy"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "Cnn14_mAP=0.431.pth"),
                           str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    expected = np.load(REFERENCE)
    assert got.shape == expected.shape == (2, 2048)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not (home / "panns_data").exists()  # the package's downloader never ran
    modules = json.loads(proc.stdout.strip().splitlines()[-1])["modules"]
    assert "panns_inference" not in modules  # its __init__ (and config.py) was not imported


def test_the_class_is_the_packages_own() -> None:
    from repurpose.features import panns

    model = panns.new_cnn14()
    assert type(model).__name__ == "Cnn14"
    assert Path(sys.modules[type(model).__module__].__file__).parent.name == "panns_inference"
    assert not (Path(__file__).parents[1] / "repurpose" / "features" / "cnn14.py").exists()
