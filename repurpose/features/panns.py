"""PANNs Cnn14 from the `panns_inference` package itself, without its import-time downloader.

`import panns_inference` runs `panns_inference/config.py`, which shells out to `wget` for an
AudioSet labels file (and leaves a 0-byte file in `~/panns_data` offline). The network lives in
`panns_inference/models.py` (with `pytorch_utils.py` beside it), which needs only torch and
torchlibrosa. `package_models()` loads those two files as submodules of a private package whose
`__path__` is the installed `panns_inference` folder, so the package's `__init__.py` (and with
it `config.py`) never runs and the real `Cnn14` class is used unchanged.

The official checkpoint (`Cnn14_mAP=0.431.pth`) is a dict whose `'model'` entry is the
state_dict; `load_checkpoint` reads it with `weights_only=True`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache
from typing import Any

SAMPLE_RATE = 32000
WINDOW = 1024
HOP = 320
MEL_BINS = 64
FMIN = 50.0
FMAX = 14000.0
CLASSES = 527
EMBEDDING_DIM = 2048
PRIVATE = "_repurpose_panns"  # the package name the files are loaded under


@lru_cache(maxsize=1)
def package_models() -> types.ModuleType:
    """`panns_inference.models`, loaded without running `panns_inference/__init__.py`."""
    spec = importlib.util.find_spec("panns_inference")  # locates; does not import
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'panns-inference' package is not installed "
                          "(pip install panns-inference)")
    if PRIVATE not in sys.modules:
        package = types.ModuleType(PRIVATE)
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules[PRIVATE] = package
    return importlib.import_module(f"{PRIVATE}.models")


def new_cnn14() -> Any:
    """The package's `Cnn14` at the published settings (32 kHz, 64 mels, 527 classes)."""
    return package_models().Cnn14(sample_rate=SAMPLE_RATE, window_size=WINDOW,
                                  hop_size=HOP, mel_bins=MEL_BINS, fmin=FMIN, fmax=FMAX,
                                  classes_num=CLASSES)


def load_checkpoint(path: str, map_location: str = "cpu") -> dict[str, Any]:
    """The state_dict of an official PANNs checkpoint (`{'model': state_dict, ...}`),
    read with `weights_only=True`. Also accepts a bare state_dict."""
    import torch

    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        return ckpt["model"]
    if isinstance(ckpt, dict) and "conv_block1.conv1.weight" in ckpt:
        return ckpt
    raise ValueError(f"{path}: not a PANNs checkpoint (expected a dict with a 'model' state_dict)")
